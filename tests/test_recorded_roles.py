"""An audit database records the roles its events were read by, and replay reads by them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from evtool.store.engine import sqlite3
from tests.conftest import PG, run


def _audited(db: str, pack: str = "cloudevents", count: int = 1500) -> list[bytes]:
    made = run(["gen", "--pack", pack, "--count", str(count), "--seed", "6", "--fast", "-q"]).stdout
    counted = run(["aggregate", "--pack", pack, "--forward", "-q"], stdin=made).stdout
    stored = run(["audit", "--pack", pack, "--db", db, "-q"], stdin=counted)
    assert stored.returncode == 0, stored.stderr
    return made.splitlines()


def _replays_as_cloudevents(db: str, made: list[bytes]) -> None:
    """Without --pack: every metric checks out, and --region reads a CloudEvent's source."""
    verify = run(["replay", "--db", db, "--verify"])
    assert verify.returncode == 0, verify.stderr
    assert b" 0 differences, 0 could not be checked" in verify.stderr
    assert b"read by the roles audit recorded (id /id, time /time, source /type, region /source)" \
        in verify.stderr
    region = orjson.loads(made[0])["source"]
    got = run(["replay", "--db", db, "-q", "--region", region]).stdout.splitlines()
    assert sorted(got) == sorted(line for line in made if orjson.loads(line)["source"] == region)


def test_a_cloudevents_audit_replays_and_verifies_without_pack(tmp_path: Path) -> None:
    """By evtool's roles, every metric of such a database was a difference (or could not be
    checked), and --region matched no event."""
    db = str(tmp_path / "ce.db")
    _replays_as_cloudevents(db, _audited(db))


def test_a_cloudevents_audit_on_postgresql_replays_without_pack(pg_database: str) -> None:
    db = f"{PG}/{pg_database}"
    _replays_as_cloudevents(db, _audited(db))


def test_audit_with_other_roles_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """One database is read by one set of roles: events read by two could not be verified."""
    db = tmp_path / "ce.db"
    _audited(str(db), count=300)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM events_in").fetchone()
    other = run(["audit", "--db", str(db)],
                stdin=run(["gen", "--count", "50", "--fast", "-q"]).stdout)
    assert other.returncode == 1 and b"holds events read by other roles" in other.stderr
    assert b"id /event_id, time /timestamp" in other.stderr and b"Traceback" not in other.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events_in").fetchone() == before
    same_roles = run(["audit", "--pack", "lab3", "--db", str(tmp_path / "ev.db"), "-q"],
                     stdin=run(["gen", "--pack", "lab3", "--count", "50", "--fast", "-q"]).stdout)
    assert same_roles.returncode == 0
    evtool = run(["audit", "--db", str(tmp_path / "ev.db"), "-q"],
                 stdin=run(["gen", "--count", "50", "--fast", "-q"]).stdout)
    assert evtool.returncode == 0, evtool.stderr                 # lab3's roles are evtool's


@pytest.mark.parametrize("edit, said", [
    ("DROP TABLE evtool_roles", b""),                           # audited before roles were kept
    ("UPDATE evtool_roles SET roles = '{\"fields\": 5}'", b"evtool_roles cannot be read"),
])
def test_without_a_readable_record_the_pack_says_the_roles(tmp_path: Path, edit: str, said: bytes) -> None:
    db = tmp_path / "ce.db"
    _audited(str(db), count=600)
    with sqlite3.connect(db) as conn:
        conn.execute(edit)
    by_pack = run(["replay", "--db", str(db), "--pack", "cloudevents", "--verify"])
    assert by_pack.returncode == 0 and b" 0 differences" in by_pack.stderr
    assert (b"evtool_roles cannot be read" in by_pack.stderr) == bool(said)
    assert b"read by the roles audit recorded" not in by_pack.stderr
    if said:
        refused = run(["audit", "--pack", "cloudevents", "--db", str(db)], stdin=b"")
        assert refused.returncode == 1 and b"which this evtool cannot read" in refused.stderr
