"""No slip of an option destroys a file: a database, an input, a log; no stored number overflows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from evtool.store.engine import sqlite3
from tests.conftest import gen_lines, records, run


@pytest.fixture
def kept(tmp: Path) -> Path:
    """An input file and an audit database holding it, side by side in `tmp`."""
    (tmp / "g.ndjson").write_bytes(gen_lines(40))
    assert run(["audit", "-i", str(tmp / "g.ndjson"), "--db", str(tmp / "audit.db"), "-q",
                "-o", "/dev/null"]).returncode == 0
    return tmp


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("args, victim", [
    (["audit", "-i", "g.ndjson", "-o", "audit.db"], "audit.db"),                  # -o read as "store"
    (["audit", "-i", "g.ndjson", "--db", "audit.db", "--dead-letter", "audit.db"], "audit.db"),
    (["audit", "-i", "g.ndjson", "--db", "other.db", "--jsonl", "audit.db"], "audit.db"),
    (["replay", "--db", "audit.db", "-o", "audit.db"], "audit.db"),
    (["watch", "--once", "-i", "g.ndjson", "-o", "audit.db"], "audit.db"),
    (["watch", "--once", "-i", "g.ndjson", "-o", "g.ndjson"], "g.ndjson"),
    (["gen", "--count", "3", "-o", "audit.db"], "audit.db"),
    (["validate", "-i", "g.ndjson", "-o", "audit.db"], "audit.db"),
    (["aggregate", "-i", "g.ndjson", "--dead-letter", "audit.db"], "audit.db"),
])
def test_an_output_never_overwrites_a_database_or_the_input(kept: Path, args: list[str],
                                                           victim: str, monkeypatch) -> None:
    monkeypatch.chdir(kept)
    before = digest(kept / victim)
    result = run(args)
    assert result.returncode == 2, result.stderr
    assert digest(kept / victim) == before
    assert b"Traceback" not in result.stderr and victim.encode() in result.stderr
    assert not (kept / "other.db").exists()          # refused before anything was opened


def test_a_log_torn_by_an_earlier_failure_is_not_glued_onto(tmp: Path) -> None:
    log = tmp / "log.jsonl"
    log.write_bytes(b'{"kind":"x"}\n{"torn":')
    result = run(["audit", "--db", str(tmp / "a.db"), "--jsonl", str(log), "-o", "/dev/null"],
                 stdin=gen_lines(3))
    assert result.returncode == 0 and b"torn line" in result.stderr
    lines = log.read_bytes().splitlines()
    assert lines[:2] == [b'{"kind":"x"}', b'{"torn":']
    assert len(records(b"\n".join(lines[2:]))) == 3          # each record whole, on its own line


METRIC = (b'{"kind":"metric","metric_id":"m1","date":"2026-11-26","region":"r",'
          b'"window_start":"2026-11-26T00:00:00Z","window_end":"2026-11-26T00:00:05Z",'
          b'"window_seconds":%s,"counts":{"a":1},"total":1,"input_event_ids":["x"]}')
ALERT = (b'{"kind":"alert","alert_id":"a1","window_start":"2026-11-26T00:00:00Z","region":"r",'
         b'"source":"s","count":1,"baseline":%s,"threshold":1,"score":1}')
LATE = b'{"kind":"deadletter","stage":"x","reason":"late","error":"e","raw":"r","window_seconds":%s}'


@pytest.mark.parametrize("line", [
    METRIC % b"9223372036854775808", METRIC % b"18446744073709551615", ALERT % b"9223372036854775808",
    LATE % b"18446744073709551615",
])
def test_a_number_no_store_can_hold_is_a_dead_letter_not_a_crash(tmp: Path, line: bytes) -> None:
    good = METRIC % b"5"
    db = tmp / "a.db"
    result = run(["audit", "--db", str(db)], stdin=line + b"\n" + good + b"\n")
    assert result.returncode == 0, result.stderr
    out = records(result.stdout)
    assert [r["reason"] for r in out if r["kind"] == "deadletter"] == ["schema"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM metrics_out").fetchone()[0] == 1   # the good one
