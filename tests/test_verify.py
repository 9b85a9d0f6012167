"""replay --verify: SQLite's grouped reading of the windows agrees with the row-by-row one, and
forged or tampered stored records are named, never a crash, in SQLite and PostgreSQL alike."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from evtool.core.roles import Roles
from evtool.core.verify import Verdict
from evtool.schemas import load_pack
from evtool.store import open_store, replay, windowed
from evtool.store.engine import sqlite3
from tests.conftest import START, run

GEN = ["--rate", "40", "--out-of-order", "0.1", "--max-delay", "2", "--duplicates", "0.02"]


ROOT = Path(__file__).resolve().parent.parent
# the built-in layout; one whose region is the CloudEvents `source` and source its `type`; one
# with neither (every event in region "all", of the pack's one source) and content ids
PACKS = ["evtool", "cloudevents", str(ROOT / "examples" / "packs" / "downloads")]


def audited(db: Path, count: int = 3000, seed: int = 7, pack: str = "evtool",
            windows: tuple[str, ...] = ("5", "60")) -> bytes:
    """Aggregates of one stream (5 s and 60 s windows, in that order), all of it audited into `db`."""
    on = ["--pack", pack]
    made = run(["gen", *on, "--count", str(count), "--seed", str(seed), "--start", START, "--fast",
                "-q", *GEN]).stdout
    valid = run(["validate", *on, "-q"], stdin=made).stdout
    records = valid + b"".join(run(["aggregate", *on, "--window", window, "--lateness", "1", "-q"],
                                   stdin=valid).stdout for window in windows)
    assert run(["audit", *on, "--db", str(db), "-q"], stdin=records).returncode == 0
    return records


TAMPERINGS = [
    # a forged number for a region and an object for a source: read as "" (as roles read them)
    "UPDATE event_store SET raw = json_set(raw, '$.region', 5, '$.source', json('{\"a\": 1}')) "
    "WHERE rowid = 40",
    "UPDATE event_store SET raw = json_remove(raw, '$.region') WHERE rowid = 41",
    "DELETE FROM trace_store WHERE (metric_seq, event_id) = "
    "(SELECT metric_seq, event_id FROM trace_store LIMIT 1 OFFSET 90)",
    "UPDATE event_store SET ts_us = ts_us + 7000000 WHERE rowid = 300",        # another window
    "UPDATE event_store SET ts_us = -ts_us WHERE rowid = 500",                 # before 1970
    "UPDATE metrics_out SET counts = '{\"x\": 1}' WHERE seq = 12",
    "DELETE FROM event_store WHERE rowid = 700",
    # the first and the last instant forged as no integer: the runs start and end past them
    "UPDATE event_store SET ts_us = 'x' || ts_us WHERE ts_us = (SELECT min(ts_us) FROM event_store)",
    "UPDATE event_store SET ts_us = ts_us + 0.5 WHERE ts_us = "
    "(SELECT max(ts_us) FROM event_store WHERE typeof(ts_us) = 'integer')",
    # instants no window of years 1-9999 holds, at the ends of what a column holds
    "UPDATE event_store SET ts_us = 9223372036854775807 WHERE rowid = 600",
    "UPDATE event_store SET ts_us = -9223372036854775808 WHERE rowid = 650",
    # lines that are no JSON text: no region and no source (SQLite's JSON functions once stopped
    # the grouped reading at the first); and text that is no UTF-8, once a stop at its decoding
    "UPDATE event_store SET raw = 'not json' WHERE rowid = 800",
    "UPDATE event_store SET raw = CAST(raw AS BLOB) WHERE rowid = 810",
    "UPDATE event_store SET raw = CAST(x'7b22ff' AS TEXT) || substr(raw, 3) WHERE rowid = 820",
    "UPDATE event_store SET event_id = CAST(x'ff' AS TEXT) || event_id WHERE rowid = 830",
    "UPDATE event_store SET ts_us = CAST(x'ff' AS TEXT) WHERE rowid = 840",
    "UPDATE trace_store SET event_id = CAST(x'ff' AS TEXT) || event_id WHERE (metric_seq, event_id) = "
    "(SELECT metric_seq, event_id FROM trace_store LIMIT 1 OFFSET 120)",
    "UPDATE metrics_out SET region = CAST(x'ff' AS TEXT) || region WHERE seq = 20",
]


class RowByRow:
    """The same database, read as a store that is not SQLite's: row by row."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def verdicts(db: Path, roles: Roles | None = None) -> tuple[Verdict, Verdict]:
    store = open_store(str(db), readonly=True)
    try:
        return replay.verify(store, None, roles), replay.verify(RowByRow(store), None, roles)
    finally:
        store.close()


@pytest.mark.parametrize("pack", PACKS)
def test_grouped_and_row_by_row_readings_agree_on_every_tampering(
        pack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, roles = tmp_path / "v.db", load_pack(pack).roles
    audited(db, pack=pack)
    monkeypatch.setattr(windowed, "CHUNK_EVENTS", 50)       # many runs, of changing spans
    monkeypatch.setattr(windowed, "FIRST_WINDOWS", 1)
    grouped: list[int] = []

    class Counted(windowed.Windows):
        def __init__(self, *args: Any) -> None:
            grouped.append(1)
            super().__init__(*args)

    monkeypatch.setattr(windowed, "Windows", Counted)
    clean, rows = verdicts(db, roles)
    assert grouped == [1, 1] and clean.checked > 10           # one grouped pass per window size
    assert clean == rows and not clean.differences and not clean.unchecked
    with sqlite3.connect(db) as conn:
        for sql in TAMPERINGS:
            conn.execute(sql)
    tampered, rows = verdicts(db, roles)
    assert tampered == rows
    assert not [t.name for t in threading.enumerate() if t.name.startswith("evtool-")]   # all ended
    assert len(tampered.differences) >= 5 and tampered.unchecked


def test_metrics_of_a_larger_window_stored_first_are_all_checked_in_order(tmp_path: Path) -> None:
    """Verification starts reading events for the first stored metric's window size before it
    knows the others: stored 60 s first, both sizes are still checked, and progress only grows."""
    found = []
    for name, windows in (("sixty-first", ("60", "5")), ("five-first", ("5", "60"))):
        audited(tmp_path / f"{name}.db", 1500, windows=windows)
        store = open_store(str(tmp_path / f"{name}.db"), readonly=True)
        told: list[tuple[int, int]] = []
        try:
            verdict = replay.verify(store, lambda done, total, told=told: told.append((done, total)))
            found.append((verdict, replay.metric_count(store),
                          replay.count_events(store, replay.Filters())))
        finally:
            store.close()
        assert [done for done, _ in told] == sorted(done for done, _ in told)
        assert told[-1] == (2 * found[-1][2], 2 * found[-1][2])         # two passes, all read
    (verdict, metrics, _), (other, _, _) = found
    assert verdict == other and verdict.checked == metrics > 20
    assert not verdict.differences and not verdict.unchecked


def test_a_forged_region_or_source_is_named_not_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    audited(db, 400, seed=3)
    with sqlite3.connect(db) as conn:
        conn.execute(TAMPERINGS[0])
        (event_id,) = conn.execute("SELECT event_id FROM event_store WHERE rowid = 40").fetchone()
    result = run(["replay", "--db", str(db), "--verify"])
    assert result.returncode == 1 and b"Traceback" not in result.stderr + result.stdout
    assert f"traced events outside its region or window: {event_id}".encode() in result.stdout


def verified_after(edit: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """replay --verify over a small audited database once a hand has made one edit: never a
    traceback, whatever the edit."""
    db = tmp_path / "f.db"
    audited(db, 400, seed=3)
    with sqlite3.connect(db) as conn:
        conn.execute(edit)
    result = run(["replay", "--db", str(db), "--verify"])
    assert b"Traceback" not in result.stderr + result.stdout
    return result


@pytest.mark.parametrize("column", ["metric_id", "region", "window_start"])
def test_a_metric_column_forged_into_no_text_is_named_not_a_crash(column: str, tmp_path: Path) -> None:
    """A region of bytes once stopped verification sorting the window's regions (bytes < str)."""
    result = verified_after(f"UPDATE metrics_out SET {column} = x'00ff' WHERE seq = 7", tmp_path)
    assert result.returncode == 1
    assert f"stored {column} b'\\x00\\xff' is not text".encode() in result.stdout, result.stdout[-300:]


@pytest.mark.parametrize("seconds", ["1e999", "-1e999", "9223372036854775807", "3e11"])
def test_a_window_size_no_years_hold_is_said_not_a_crash(seconds: str, tmp_path: Path) -> None:
    """An infinite or huge stored window_seconds once stopped verification (int() of infinity,
    an instant past what SQLite binds): such metrics are ones it could not check."""
    result = verified_after(f"UPDATE metrics_out SET window_seconds = {seconds} WHERE seq <= 3", tmp_path)
    assert result.returncode == 0
    assert b"3 metrics have window_seconds" in result.stdout and b"which is no window size" in result.stdout


def test_verify_reads_postgres_as_it_reads_sqlite(pg_database: str, tmp_path: Path) -> None:
    """The same stream audited into PostgreSQL verifies clean, and a tampered metric and a
    trace row gone are named there as they are in SQLite."""
    from tests.conftest import PG, psql

    db, url = tmp_path / "s.db", f"{PG}/{pg_database}"
    data = audited(db, 1500)
    assert run(["audit", "--db", url, "-q"], stdin=data).returncode == 0
    result = run(["replay", "--db", url, "--verify"])
    assert result.returncode == 0 and b"0 differences, 0 could not" in result.stderr, result.stdout
    with sqlite3.connect(db) as conn:
        (metric_id, gone) = conn.execute("SELECT metric_id, event_id FROM trace WHERE metric_id IN "
                                         "(SELECT metric_id FROM metrics_out WHERE total > 1) "
                                         "LIMIT 1").fetchone()
    edits = (f"UPDATE metrics_out SET total = total + 1 WHERE metric_id = '{metric_id}'",
             f"DELETE FROM trace WHERE metric_id = '{metric_id}' AND event_id = '{gone}'")
    for sql in edits:
        psql(pg_database, sql)
        with sqlite3.connect(db) as conn:
            conn.execute(sql)
    found = [run(["replay", "--db", where, "--verify"]) for where in (url, str(db))]
    assert [v.returncode for v in found] == [1, 1] and found[0].stdout == found[1].stdout
    assert found[0].stdout.decode().startswith(metric_id) and b"stored total" in found[0].stdout


@pytest.mark.parametrize(("region", "source", "read"), [
    ("/region", "/source", (("region",), ("source",))),
    ("/data/where", None, (("data", "where"), "")),
    (None, "/type", ("all", ("type",))),
    ("/a~1b", "/source", None),          # an escaped key: parsed instead
    ("/items/0", "/source", None),       # maybe an array index
    ("/re.gion", "/source", None),       # SQLite reads a dot as a step
])
def test_sqlite_reads_a_role_only_where_its_path_means_what_the_pointer_does(
        region: str | None, source: str | None, read: Any) -> None:
    assert windowed.readable(Roles(region=region, source=source)) == read


def test_both_roles_come_from_one_reading_of_each_event_unless_one_is_not_a_string(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-parse reading gives each string role as stored; a forged or missing one takes the
    role-by-role reading (made recognisable here), which reads it as ""."""
    monkeypatch.setattr(windowed, "_STRING", "'\"by role\"'")
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE event_store (event_id TEXT, raw TEXT, ts_us INTEGER)")
    events = [('{"region": "a\\",\\"b", "source": "s]"}', ["a\",\"b", "s]"]),
              ('{"region": 5, "source": "s"}', ["by role", "by role"]),
              ('{"source": ["x"]}', ["by role", "by role"]),
              ('{"region": "r", "source": {"k": "v"}}', ["by role", "by role"])]
    conn.executemany("INSERT INTO event_store VALUES (?, ?, ?)",
                     [(f"e{at}", raw, at) for at, (raw, _) in enumerate(events)])
    document, count = conn.execute(windowed._run_sql(("region",), ("source",)),
                                   {"size": 10, "lo": 0, "hi": 10}).fetchone()
    [[start, flat]] = orjson.loads(document)
    assert (start, count) == (0, 4)
    assert sorted(flat[at:at + 3] for at in range(0, 12, 3)) == [[f"e{at}", *roles]
                                                                 for at, (_, roles) in enumerate(events)]


def test_traces_of_metrics_stored_one_after_another_are_read_as_a_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert windowed.seq_span(["7", "9", "8"]) == (7, 9)
    assert windowed.seq_span(["1", "500"]) is None                      # mostly others between
    assert windowed.seq_span(["a-metric-id"]) is None and windowed.seq_span([]) is None
    db = tmp_path / "r.db"
    audited(db, 1500)
    span_of, spans = windowed.seq_span, []

    def spied(keys: list[str]) -> tuple[int, int] | None:
        spans.append(span_of(keys))
        return spans[-1]

    monkeypatch.setattr(windowed, "seq_span", spied)
    store = open_store(str(db), readonly=True)
    try:
        by_range, metrics = replay.verify(store), replay.metric_count(store)
    finally:
        store.close()
    assert spans and all(spans)                      # every batch of windows read as a range
    assert by_range == verdicts(db)[1] and by_range.checked == metrics and not by_range.differences


@pytest.mark.parametrize("edit", [
    "window_seconds = 'five'", "total = 'x'", "total = 4.5", "counts = '{bad'", "counts = '[1, 2]'"])
def test_a_stored_metric_no_aggregate_writes_is_a_difference_not_a_crash(edit: str, tmp_path: Path) -> None:
    """An edited metric row (a field of the wrong kind) is named as a difference, and the other
    metrics are checked as before; a total of 4.5 is not read as 4."""
    db = tmp_path / "m.db"
    audited(db, 400, seed=3, windows=("5",))
    with sqlite3.connect(db) as conn:
        metric_id, before = conn.execute("SELECT metric_id, (SELECT count(*) FROM metrics_out) "
                                         "FROM metrics_out WHERE seq = 3").fetchone()
        conn.execute(f"UPDATE metrics_out SET {edit} WHERE seq = 3")
        conn.execute("INSERT INTO deadletters (deadletter_id, stage, reason, record, created_at) "
                     "VALUES ('l1', 'aggregate', 'late', '[1]', 'x'), ('l2', 'aggregate', 'late', '{', 'x')")
    result = run(["replay", "--db", str(db), "--verify"])
    assert result.returncode == 1 and b"internal error" not in result.stderr, result.stderr
    field = edit.split(" = ")[0]
    differences = [line for line in result.stdout.decode().splitlines()
                   if not line.startswith("could not check:")]
    assert len(differences) == 1 and differences[0].startswith(metric_id), differences
    assert f"stored {field} " in differences[0]
    assert f"verify: {before - 1} of {before} metrics checked, 1 differences".encode() in result.stderr
