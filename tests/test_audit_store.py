"""The audit database's storage: version 1 files migrate whole, the trace holds every id, and the
writing process that audit starts never outlives it nor fails silently."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import orjson
import pytest

from evtool.core.stats import Stats
from evtool.store import audit
from evtool.store.engine import sqlite3
from evtool.store.schema import MIGRATIONS
from evtool.store.sqlite import Rows, SqliteStore, StoreError
from evtool.store.writer import SqliteWriter
from tests.conftest import checker, evtool_cmd, gen_lines, records, run


def rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def metric(metric_id: str, ids: list[str], region: str = "maule") -> dict:
    return {"kind": "metric", "metric_id": metric_id, "date": "2026-11-26", "region": region,
            "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
            "window_seconds": 5, "counts": {"security.incident": len(ids)}, "total": len(ids),
            "input_event_ids": ids}


def version_1(db: Path, events: list[bytes], metrics: list[dict]) -> None:
    """A database as evtool wrote it before the events_in and trace views."""
    with sqlite3.connect(db) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        for line in events:
            ev = orjson.loads(line)
            conn.execute("INSERT INTO events_in (event_id, raw, received_at, ts_us) VALUES (?, ?, ?, ?)",
                         (ev["event_id"], line.decode(), "2026-11-26T01:00:00Z", 0))
        for m in metrics:
            conn.execute("INSERT INTO metrics_out VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (m["metric_id"], m["date"], m["region"], m["window_start"], m["window_end"],
                          m["window_seconds"], orjson.dumps(m["counts"]).decode(), m["total"],
                          "2026-11-26T01:00:00Z", orjson.dumps(m).decode()))
            conn.executemany("INSERT INTO trace VALUES (?, ?)",
                             [(m["metric_id"], eid) for eid in m["input_event_ids"]])


def test_a_version_1_database_migrates_with_every_row_and_query(tmp_path) -> None:
    db = tmp_path / "old.db"
    events = gen_lines(30, 4).splitlines()
    ids = [orjson.loads(line)["event_id"] for line in events]
    version_1(db, events, [metric("m-1", ids[:10]), metric("m-2", ids[10:12], "biobio")])
    result = run(["audit", "--db", str(db), "-q"], stdin=b"")
    assert result.returncode == 0, result.stderr
    assert rows(db, "PRAGMA user_version") == [(2,)]
    first = orjson.loads(events[0])
    assert rows(db, "SELECT region, source, timestamp, raw FROM events_in WHERE event_id = ?",
                (first["event_id"],)) == [(first["region"], first["source"], first["timestamp"],
                                           events[0].decode())]
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM trace WHERE metric_id = 'm-1'")) == \
        sorted(ids[:10])
    assert rows(db, "SELECT metric_id, region, total FROM metrics_out ORDER BY metric_id") == [
        ("m-1", "maule", 10), ("m-2", "biobio", 2)]
    assert rows(db, "SELECT count(*) FROM events_in") == [(30,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_every_trace_id_is_kept_even_one_holding_nul(tmp_path) -> None:
    """SQLite's JSON functions stop a string at an escaped NUL: such a metric's trace still
    holds the whole id, beside metrics whose trace SQLite reads out of their line."""
    db = tmp_path / "nul.db"
    odd = ["a\x00b", "c\\u0000d", "plain"]
    lines = [orjson.dumps(metric("m-nul", odd)), orjson.dumps(metric("m-ok", ["x", "y"]))]
    result = run(["audit", "--db", str(db), "-q"], stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0, result.stderr
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM trace WHERE metric_id = 'm-nul'")) == \
        sorted(odd)
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM trace WHERE metric_id = 'm-ok'")) == \
        ["x", "y"]


def test_a_later_copy_of_a_metric_adds_no_trace(tmp_path) -> None:
    db = tmp_path / "copy.db"
    first = orjson.dumps(metric("m", ["a", "b"]))
    run(["audit", "--db", str(db), "-q"], stdin=first + b"\n")
    run(["audit", "--db", str(db), "-q"], stdin=first + b"\n" + first + b"\n")
    assert rows(db, "SELECT count(*) FROM trace") == [(2,)]
    assert rows(db, "SELECT count(*) FROM metrics_out") == [(1,)]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_writer_that_dies_is_an_error_not_a_silent_loss(tmp_path) -> None:
    db = tmp_path / "w.db"
    proc = subprocess.Popen(evtool_cmd("audit", "--db", str(db), "-q", "--batch-seconds", "0.1"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    events = gen_lines(50, 2).splitlines()
    proc.stdin.write(b"\n".join(events[:25]) + b"\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not stored_events(db) and time.monotonic() < deadline:     # its first batch committed
        time.sleep(0.02)
    writers = children(proc.pid)            # now, not before: no short-lived child is taken for it
    assert len(writers) == 1
    os.kill(writers[0], signal.SIGKILL)
    try:
        proc.stdin.write(b"\n".join(events[25:]) + b"\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"stopped" in err and b"Traceback" not in err
    stored = {r[0] for r in rows(db, "SELECT event_id FROM events_in")}
    assert all(r["event_id"] in stored for r in records(out))


def stored_events(db: Path) -> int:
    try:
        return rows(db, "SELECT count(*) FROM events_in")[0][0]
    except sqlite3.OperationalError:            # not made yet
        return 0


@pytest.mark.slow
def test_ctrl_c_ends_audit_and_its_writer_with_everything_forwarded_stored(tmp_path) -> None:
    db, source = tmp_path / "c.db", tmp_path / "in.ndjson"
    source.write_bytes(gen_lines(200_000, 3))
    with open(source, "rb") as src:
        proc = subprocess.Popen(evtool_cmd("audit", "--db", str(db), "-q", "--batch-records", "20000"),
                                stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while not (db.exists() and stored_events(db)):      # a batch committed: Ctrl-C lands mid-run
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        writers = children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)              # as the terminal does: the whole group
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert writers and not any(Path(f"/proc/{w}").exists() for w in writers)
    forwarded = records(out)
    assert 0 < len(forwarded) < 200_000
    stored = {r[0] for r in rows(db, "SELECT event_id FROM events_in")}
    assert all(r["event_id"] in stored for r in forwarded)


def events_batch(*events: tuple[str, str]) -> Rows:
    rows_ = Rows()
    rows_.by_table["events_in"] += [(eid, raw, "2026-11-27T00:00:00Z", 0) for eid, raw in events]
    return rows_


def test_batches_in_the_pipe_commit_in_order_and_none_past_a_failed_one(tmp_path) -> None:
    """audit hands the writer its next batch while one commits: both commit, in order (the
    first copy of an event stays); a batch that fails fails those queued behind it too, so the
    database never holds a later batch without an earlier one."""
    writer = SqliteWriter(str(tmp_path / "p.db"))
    try:
        done = [writer.submit(events_batch((f"e{i}", f'{{"n":{i}}}'), ("same", f'{{"copy":{i}}}')))
                for i in range(5)]
        for future in done:
            assert future.result(timeout=30) == {}           # committed, and nothing kept out
        assert rows(tmp_path / "p.db", "SELECT raw FROM events_in WHERE event_id = 'same'") == \
            [('{"copy":0}',)]
        bad = events_batch(("x", '{"x":1}'))
        bad.by_table["windows"].append(("too", "few", "columns"))
        failing = [writer.submit(bad), writer.submit(events_batch(("after", '{"a":1}')))]
        for future in failing:
            with pytest.raises(StoreError):
                future.result(timeout=30)
    finally:
        writer.close()
    assert rows(tmp_path / "p.db", "SELECT count(*) FROM events_in WHERE event_id IN ('x', 'after')") \
        == [(0,)]
    assert rows(tmp_path / "p.db", "SELECT count(*) FROM events_in") == [(6,)]


def metric_batch(metric_id: str, total: int) -> Rows:
    rows_ = Rows()
    line = orjson.dumps({**metric(metric_id, [f"e{i}" for i in range(total)]), "total": total}).decode()
    rows_.by_table["metrics_out"].append((metric_id, "2026-11-26", "maule", "2026-11-26T00:00:00Z",
                                          "2026-11-26T00:00:05Z", 5, "{}", total,
                                          "2026-11-27T00:00:00Z", line))
    return rows_


def locked(db: Path) -> bool:
    """Whether a writer holds the database's write lock (a transaction is open)."""
    conn = sqlite3.connect(db, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def test_a_batch_sent_ahead_in_parts_commits_whole_with_every_parts_conflicts(tmp_path) -> None:
    """Parts are written while audit reads on, into one transaction: nothing of the batch is
    visible before its commit, and the answer names a conflict found in any part."""
    db = tmp_path / "a.db"
    writer = SqliteWriter(str(db))
    try:
        assert writer.submit(metric_batch("m1", 2)).result(timeout=30) == {}
        writer.send_ahead(events_batch(("e1", '{"n":1}')))
        writer.send_ahead(metric_batch("m1", 3))
        deadline = time.monotonic() + 30
        while not locked(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert locked(db)                       # the parts' transaction is open...
        assert rows(db, "SELECT count(*) FROM events_in") == [(0,)]     # ...and holds them unseen
        answer = writer.submit(events_batch(("e2", '{"n":2}'))).result(timeout=30)
    finally:
        writer.close()
    assert answer == {("metrics_out", "m1", 3): 2}
    assert rows(db, "SELECT event_id FROM events_in ORDER BY event_id") == [("e1",), ("e2",)]
    assert rows(db, "SELECT total FROM metrics_out") == [(2,)]


def test_parts_whose_batch_never_commits_or_fails_leave_nothing(tmp_path) -> None:
    db = tmp_path / "b.db"
    writer = SqliteWriter(str(db))
    writer.send_ahead(events_batch(("gone", '{"n":0}')))
    writer.close()                                      # audit ended before the batch's commit
    assert rows(db, "SELECT count(*) FROM events_in") == [(0,)]
    writer = SqliteWriter(str(db))
    try:
        bad = events_batch(("x", '{"x":1}'))
        bad.by_table["windows"].append(("too", "few", "columns"))
        writer.send_ahead(events_batch(("first", '{"f":1}')))
        writer.send_ahead(bad)
        failing = [writer.submit(events_batch(("last", '{"l":1}'))),
                   writer.submit(events_batch(("after", '{"a":1}')))]
        for future in failing:
            with pytest.raises(StoreError):
                future.result(timeout=30)
    finally:
        writer.close()
    assert rows(db, "SELECT count(*) FROM events_in") == [(0,)]


class InProcessWriter:
    """The writer process's protocol over a store in this process, each call recorded."""

    kind, reads_trace = "sqlite", True

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.path = store, store.path
        self.calls: list[str] = []
        self._found: dict = {}

    def send_ahead(self, rows_: Rows) -> None:
        self.calls.append("part")
        self._found.update(self.store.write_part(rows_))

    def submit(self, rows_: Rows) -> Future:
        self.calls.append("commit")
        done: Future = Future()
        self._found.update(self.store.write_part(rows_))
        self.store.commit()
        done.set_result(self._found)
        self._found = {}
        return done

    def write(self, rows_: Rows) -> dict:
        return self.submit(rows_).result()

    def close(self) -> None:
        self.store.close()


@pytest.mark.parametrize("batch_seconds", [1.0, 5.0])
def test_a_batch_reaches_the_writer_in_parts_as_audit_reads_it(tmp_path, monkeypatch, batch_seconds) -> None:
    """Rows go ahead in parts (where the batch's transaction would stay open briefly), yet every
    line goes out only once its batch has committed, and every event is stored."""
    monkeypatch.setattr(audit, "PART_ROWS", 100)
    lines = gen_lines(1000, 5).splitlines()
    writer = InProcessWriter(SqliteStore(str(tmp_path / "p.db")))
    stage = audit.AuditStage(writer, Stats(), checker(), batch_seconds=batch_seconds,
                             clock=lambda: 0.0, overlap=True)
    out: list[bytes] = []
    for at in range(0, len(lines), 30):
        stage.process(lines[at:at + 30], out, out)
        assert out == []                            # nothing has committed yet
    stage.finish(out, out)
    writer.close()
    assert out == lines
    parts = 1000 // 120 if batch_seconds <= audit.AHEAD_SECONDS else 0     # 4 input batches a part
    assert writer.calls == ["part"] * parts + ["commit"]
    assert rows(tmp_path / "p.db", "SELECT count(*) FROM events_in") == [(1000,)]


def stored(db: Path) -> list[list[tuple]]:
    """Every table's rows but the clock's columns."""
    return [rows(db, sql) for sql in (
        "SELECT event_id, raw, ts_us FROM events_in ORDER BY event_id",
        "SELECT metric_id, total, raw FROM metrics_out ORDER BY metric_id",
        "SELECT metric_id, event_id FROM trace ORDER BY metric_id, event_id",
        "SELECT window_id, raw FROM windows ORDER BY window_id",
        "SELECT deadletter_id, reason, record FROM deadletters ORDER BY deadletter_id")]


def test_parts_sent_ahead_change_nothing_audit_stores_or_forwards(tmp_path, monkeypatch) -> None:
    """Conflicts, dead letters and duplicates land the same whether a batch's rows went ahead in
    parts (1 s batches) or all at its commit (5 s batches)."""
    from evtool.cli import run as cli_run
    from tests.test_audit import upstream
    from tests.test_audit_durability import _metric_and_other

    first, other = _metric_and_other(8)
    lines = upstream(3000, 4).splitlines()
    data = b"\n".join([*lines[:2500], first, b"{not json", *lines[2500:], other, first]) + b"\n"
    monkeypatch.setattr(audit, "PART_ROWS", 50)
    sent, real = tmp_path / "parts", SqliteWriter.send_ahead

    def counted(self: SqliteWriter, rows_: Rows) -> None:
        with open(sent, "a") as log:
            log.write(f"{len(rows_)}\n")
        real(self, rows_)

    monkeypatch.setattr(SqliteWriter, "send_ahead", counted)
    source = tmp_path / "in.ndjson"
    source.write_bytes(data)
    results, parts = [], []
    for seconds in ("1", "5"):             # in this process, where the spy is (not a program)
        db, out = tmp_path / f"{seconds}.db", tmp_path / f"{seconds}.out"
        assert cli_run(["audit", "--db", str(db), "--batch-seconds", seconds, "--batch-records", "1500",
                        "-i", str(source), "-o", str(out), "-q"]) == 0
        results.append((out.read_bytes(), stored(db)))
        parts.append(len(sent.read_text().split()) if sent.exists() else 0)
    assert parts[0] > 0 and parts[1] == parts[0]        # parts went ahead of 1 s batches only
    assert results[0] == results[1]
    assert b'"reason":"conflict"' in results[0][0] and b'"reason":"json"' in results[0][0]


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                    reason="pysqlite3-binary has wheels for Linux x86_64 only")
def test_the_audit_database_runs_on_the_bundled_sqlite(tmp_path: Path) -> None:
    """Where the faster library installs, a store opens it (the writer process imports the
    same store module)."""
    bundled = pytest.importorskip("pysqlite3.dbapi2")
    assert sqlite3 is bundled
    store = SqliteStore(str(tmp_path / "a.db"))
    try:
        assert store.conn.execute("SELECT sqlite_version()").fetchone()[0] == bundled.sqlite_version
    finally:
        store.close()


def test_a_database_audit_wrote_reads_in_pythons_own_sqlite(tmp_path: Path) -> None:
    """Users read audit.db with whatever sqlite3 they have (Debian 12's is 3.40): the views,
    JSON reads and trace of a file the bundled library wrote read the same there."""
    import sqlite3 as system_sqlite

    db = tmp_path / "a.db"
    events = [orjson.loads(line) for line in gen_lines(40, seed=3).splitlines()]
    aggregated = run(["aggregate", "--forward", "--no-alerts"], b"".join(
        orjson.dumps(event) + b"\n" for event in events))
    assert run(["audit", "--db", str(db)], aggregated.stdout).returncode == 0
    expected = {event["event_id"]: event["region"] for event in events}
    with system_sqlite.connect(db) as conn:
        assert dict(conn.execute("SELECT event_id, region FROM events_in")) == expected
        traced = conn.execute("SELECT count(DISTINCT event_id) FROM trace").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert traced == len(expected)
