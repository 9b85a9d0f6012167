"""audit's durability: a kill at any moment, commits behind the reading, conflicts found by the
store, each leaving a database that holds what was forwarded and the first copy of a metric."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from evtool.store.engine import sqlite3
from tests.conftest import evtool_cmd, gen_lines, run
from tests.test_audit import rows, upstream


@pytest.mark.slow
def test_kill_9_never_loses_a_forwarded_record(tmp_path) -> None:
    """SIGKILL audit at 10 random moments of a 200k-event run: the database is intact and
    holds every record audit had forwarded."""
    source = tmp_path / "in.ndjson"
    source.write_bytes(upstream(200_000, 5))
    rng = random.Random(42)
    mid_run = 0
    for attempt in range(10):
        db, out = tmp_path / f"k{attempt}.db", tmp_path / f"k{attempt}.out"
        with open(source, "rb") as src, open(out, "wb") as dst:
            proc = subprocess.Popen(evtool_cmd("audit", "--db", str(db), "-q", "--batch-records", "5000",
                                               "--batch-seconds", "0.2"), stdin=src, stdout=dst)
            deadline = time.monotonic() + 60          # kill on observed progress, not on a clock
            while out.stat().st_size == 0 and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.4))
            proc.kill()
            proc.wait()
        assert rows(db, "PRAGMA integrity_check") == [("ok",)]
        lines = out.read_bytes().split(b"\n")[:-1]           # a cut last line was never whole
        forwarded = [orjson.loads(x) for x in lines]
        if not forwarded and not rows(db, "SELECT name FROM sqlite_master WHERE name = 'events_in'"):
            continue                                         # killed before it made its tables
        events = {r[0] for r in rows(db, "SELECT event_id FROM events_in")}
        metrics = {r[0] for r in rows(db, "SELECT metric_id FROM metrics_out")}
        assert all(r["event_id"] in events for r in forwarded if "kind" not in r)
        assert all(r["metric_id"] in metrics for r in forwarded if r.get("kind") == "metric")
        mid_run += 0 < len(forwarded) < len(source.read_bytes().splitlines())
    assert mid_run >= 7                 # the kills landed while records were flowing


def test_batches_commit_behind_the_reading_yet_conflicts_and_order_hold(tmp_path: Path) -> None:
    """Overlapping, audit commits one batch on a thread while it reads the next: a metric whose
    stored-or-committing copy has another total is still a conflict, and every line still goes
    out, in input order, only with its committed batch."""
    from evtool.core.stats import Stats
    from evtool.store.audit import AuditStage
    from evtool.store.sqlite import SqliteStore
    from tests.conftest import checker

    events = gen_lines(300, 8)
    whole = run(["aggregate", "-q"], stdin=events).stdout.splitlines()
    fewer = run(["aggregate", "-q"], stdin=b"\n".join(events.splitlines()[:-1]) + b"\n").stdout.splitlines()
    totals = {r["metric_id"]: r["total"] for r in map(orjson.loads, whole) if r.get("kind") == "metric"}
    other = next(line for line in fewer if (r := orjson.loads(line)).get("kind") == "metric"
                 and r["metric_id"] in totals and totals[r["metric_id"]] != r["total"])
    db = str(tmp_path / "c.db")
    store = SqliteStore(db)
    stage = AuditStage(store, Stats(), checker(), batch_records=1, overlap=True)
    lines = events.splitlines() + whole
    out: list[bytes] = []
    for at in range(0, len(lines), 37):
        stage.process(lines[at:at + 37], out, out)
    stage.process([other], out, out)                 # its first copy may still be committing
    stage.finish(out, out)
    stage.close()
    assert [x for x in out if b'"kind":"deadletter"' not in x] == lines
    conflict = [orjson.loads(x) for x in out if b'"reason":"conflict"' in x]
    assert len(conflict) == 1 and stage.unsafe_batches == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events_in").fetchone()[0] == 300
    store.close()


def _metric_and_other(seed: int) -> tuple[bytes, bytes]:
    """A metric line, and another copy of it (same id) with a smaller total."""
    events = gen_lines(300, seed)
    whole = run(["aggregate", "-q"], stdin=events).stdout.splitlines()
    fewer = run(["aggregate", "-q"], stdin=b"\n".join(events.splitlines()[:-1]) + b"\n").stdout.splitlines()
    by_id = {r["metric_id"]: line for line in whole if (r := orjson.loads(line)).get("kind") == "metric"}
    for line in fewer:
        r = orjson.loads(line)
        if r.get("kind") == "metric" and r["metric_id"] in by_id and by_id[r["metric_id"]] != line:
            return by_id[r["metric_id"]], line
    raise AssertionError("no metric changed")


def test_a_conflict_found_by_the_store_is_stored_before_its_input_counts_as_safe(tmp_path: Path) -> None:
    """Only the store sees a copy stored by an earlier run: the commit answers with the conflict,
    whose dead letter commits with a later batch, and until it has, no input is safe to ack."""
    from evtool.core.stats import Stats
    from evtool.store.audit import AuditStage
    from evtool.store.sqlite import SqliteStore
    from tests.conftest import checker

    first, other = _metric_and_other(8)
    db = str(tmp_path / "c.db")
    store = SqliteStore(db)
    stage = AuditStage(store, Stats(), checker())
    stage.process([first], [], [])
    stage.finish([], [])
    stage = AuditStage(store, Stats(), checker(), batch_records=1, overlap=True)
    out: list[bytes] = []
    stage.process([other], out, out)
    fed, deadline = 1, time.monotonic() + 30        # input batches since (and with) the conflict's
    while not out and time.monotonic() < deadline:
        time.sleep(0.01)
        stage.process([], out, out)
        fed += 1
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM deadletters WHERE reason = 'conflict'").fetchone()[0]
        assert stage.unsafe_batches == fed or stored == 1   # the oldest unsafe is the conflict's
    stage.finish(out, out)
    stage.close()
    store.close()
    assert [orjson.loads(x)["reason"] for x in out] == ["conflict"] and stage.unsafe_batches == 0
    assert rows(tmp_path / "c.db", "SELECT total FROM metrics_out") == [(orjson.loads(first)["total"],)]


def test_postgres_keeps_the_first_copy_and_says_so(pg_database: str) -> None:
    from tests.conftest import PG, psql

    first, other = _metric_and_other(9)
    url = f"{PG}/{pg_database}"
    assert run(["audit", "--db", url, "-q"], stdin=first + b"\n").returncode == 0
    result = run(["audit", "--db", url, "-q"], stdin=first + b"\n" + other + b"\n")
    assert result.returncode == 0
    assert [orjson.loads(x).get("reason") for x in result.stdout.splitlines()] == [None, "conflict"]
    metric = orjson.loads(first)
    assert psql(pg_database, f"SELECT total FROM metrics_out WHERE metric_id = '{metric['metric_id']}'") \
        == str(metric["total"])
    assert psql(pg_database, "SELECT count(*) FROM deadletters WHERE reason = 'conflict'") == "1"
