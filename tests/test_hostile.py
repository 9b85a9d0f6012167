"""Hostile input and options: each case a user hit, by what the user sees (exit code, records,
one clear line), never a traceback."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.stats import Stats
from evtool.store.engine import sqlite3
from tests.conftest import START, checker, gen_lines, pipeline, records, run

EVENT: dict[str, Any] = {
         "event_id": "6f1c0000-0000-4000-8000-000000000001", "timestamp": "2026-11-26T13:14:01Z",
         "region": "maule", "source": "security.incident", "schema_version": "1.0",
         "correlation_id": "6f1c0000-0000-4000-8000-0000000000ff",
         "payload": {"incident_type": "robbery", "severity": 3, "reported_by": "citizen"}}


def event(n: int, timestamp: str, **fields: object) -> bytes:
    return orjson.dumps({**EVENT, "event_id": f"6f1c0000-0000-4000-8000-{n:012d}",
                         "timestamp": timestamp, **fields})


def no_traceback(result) -> None:
    assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr, result.stderr


# --- one rule for time -------------------------------------------------------------------------

EDGE_TIMES = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "0999-06-01T00:00:00Z",
              "2026-11-26T23:59:60Z", "0001-01-01T00:00:00Z", "2026-11-26T13:14:01.1234567Z"]


def test_edge_times_flow_through_every_stage_without_an_internal_error(tmp) -> None:
    data = b"\n".join(event(i, t) for i, t in enumerate(EDGE_TIMES)) + b"\n"
    valid = run(["validate", "-q"], stdin=data)
    no_traceback(valid)
    assert len([r for r in records(valid.stdout) if "kind" not in r]) == len(EDGE_TIMES) - 1
    rejected = [r for r in records(valid.stdout) if r.get("kind") == "deadletter"]
    # +14:00 in year 1 is year 0 in UTC: outside what any stage can write
    assert [r["raw"] for r in rejected] == [event(1, EDGE_TIMES[1]).decode()]
    counted = run(["aggregate", "--window", "7", "--max-ahead", "0", "-q"], stdin=valid.stdout)
    no_traceback(counted)
    out = records(counted.stdout)
    for rec in out:
        for key in ("window_start", "window_end"):
            if key in rec:
                assert len(rec[key].split("-")[0]) == 4, rec[key]
    windows = [r for r in out if r.get("kind") == "window"]
    assert any(w["window_start"].startswith("0999-") for w in windows)
    leap = next(w for w in windows if "6f1c0000-0000-4000-8000-000000000003" in w["event_ids"])
    at = 1_795_737_600                                                     # :60 is 00:00:00 next day
    assert leap["window_start"] == iso(at // 7 * 7 * 10**6)
    assert leap["window_end"] == iso((at // 7 * 7 + 7) * 10**6)
    unplaceable = [r for r in out if r.get("kind") == "deadletter" and r["stage"] == "aggregate"
                   and r["reason"] == "schema"]
    assert sorted(r["raw"] for r in unplaceable) == sorted(
        event(i, EDGE_TIMES[i]).decode() for i in (0, 4))     # their windows cross 0001 or 9999
    stored = run(["audit", "--db", str(tmp / "a.db"), "-q"], stdin=counted.stdout)
    no_traceback(stored)
    assert len(records(stored.stdout)) == len(out)
    with sqlite3.connect(tmp / "a.db") as conn:
        assert conn.execute("SELECT count(*) FROM deadletters WHERE stage = 'audit'").fetchone() == (0,)
    watched = run(["watch", "--once", "--json", "-q"], stdin=counted.stdout)
    no_traceback(watched)
    assert orjson.loads(watched.stdout)["rejected"] == 0


def test_gen_at_the_end_of_time_says_so(tmp) -> None:
    late = run(["gen", "--start", "9999-12-31T23:59:50Z", "--count", "1000", "--fast", "--seed", "3"])
    no_traceback(late)
    assert late.returncode == 1 and b"simulated clock passed 9999-12-31" in late.stderr
    made = records(late.stdout)
    # the same draws from an ordinary start: every event before the last start (5 s in) is kept
    early = records(run(["gen", "--start", "2000-01-01T00:00:00Z", "--count", "1000", "--fast",
                         "--seed", "3"]).stdout)
    before = [r for r in early if r["timestamp"] < "2000-01-01T00:00:05"]
    assert len(made) == len(before) > 0 and all("kind" not in r for r in made)
    assert [r["event_id"] for r in made] == [r["event_id"] for r in before]
    assert [r["timestamp"][19:] for r in made] == [r["timestamp"][19:] for r in before]
    beyond = run(["gen", "--start", "10000-01-01T00:00:00Z", "--count", "1"])
    assert beyond.returncode == 2 and b"--start" in beyond.stderr
    no_traceback(beyond)


def iso(us: int) -> str:
    """An instant in µs as the contract writes it: UTC, Z, a fraction only when there is one."""
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def test_window_sizes_binary_floats_cannot_hold_are_exact(tmp) -> None:
    at_us = {1: 1_795_698_840_000_000, 2: 1_795_698_839_900_000, 3: 1_795_698_840_300_000}
    data = b"".join(event(n, iso(us)) + b"\n" for n, us in at_us.items())
    for size_us in (100_000, 300_000, 1_100_000):
        out = records(run(["aggregate", "--window", str(size_us / 10**6), "--lateness", "1", "-q"],
                          stdin=data).stdout)
        got = {int(e[-1]): (w["window_start"], w["window_end"]) for w in out
               if w.get("kind") == "window" for e in w["event_ids"]}
        want = {n: (iso(us // size_us * size_us), iso((us // size_us + 1) * size_us))
                for n, us in at_us.items()}
        assert got == want, size_us
    made = ["gen", "--count", "3000", "--seed", "2", "--start", START, "--fast", "--rate", "40"]
    db = tmp / "w.db"
    pipeline(made, ["validate"], ["aggregate", "--window", "0.1", "--forward"], ["audit", "--db", str(db)])
    verify = run(["replay", "--db", str(db), "--verify"])
    assert verify.returncode == 0 and b" 0 differences" in verify.stderr, verify.stderr


def test_window_below_a_microsecond_is_refused() -> None:
    result = run(["aggregate", "--window", "0.0000001"], stdin=b"")
    assert result.returncode == 2 and b"--window" in result.stderr


def test_dedupe_expiry_depends_on_the_input_alone() -> None:
    """An id repeated 60 s of event time later, with a 10 s horizon: counted the same whether the
    input comes in one read or one line per read."""
    lines = [event(1, "2026-11-26T13:14:00Z")]
    lines += [event(100 + i, f"2026-11-26T13:14:{i:02d}Z") for i in range(1, 60)]
    lines += [event(1, "2026-11-26T13:15:00Z"), event(1, "2026-11-26T13:15:01Z")]

    def counts(batches: list[list[bytes]]) -> tuple[int, list[bytes]]:
        stage = AggregateStage(AggregateConfig(window=5, dedupe_horizon=10), Stats(), checker())
        out: list[bytes] = []
        for batch in batches:
            stage.process(batch, out, out)
        stage.finish(out, out)
        return stage.stats.duplicates, out

    whole = counts([lines])
    assert whole == counts([[x] for x in lines]) == counts([lines[:30], lines[30:61], lines[61:]])
    assert whole[0] == 1            # the repeat at 13:15:00 is past the horizon; 13:15:01 is not


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "0", "-1"])
def test_window_rejects_values_that_are_no_duration(value) -> None:
    result = run(["aggregate", "--window", value], stdin=b"")
    assert result.returncode == 2, (value, result.stderr)
    no_traceback(result)


# --- records that parsers disagree on, and outputs that would eat their input ---------------------

DUPLICATED = [
    b'{"event_id":"6f1c0000-0000-4000-8000-000000000001","event_id":"x","timestamp":"2026-11-26T13:14:01Z"}',
    orjson.dumps(EVENT).replace(b'"region":"maule"', b'"region":"maule","region":"aysen"'),
    orjson.dumps(EVENT).replace(b'"severity":3', b'"severity":3, "severity":9'),
    b'{"kind":"metric", "kind":"window"}',
]


@pytest.mark.parametrize("command", [["validate"], ["aggregate"], ["audit", "--db", "{tmp}/a.db"]])
def test_duplicate_keys_are_dead_letters_in_every_stage(tmp, command) -> None:
    command = [c.replace("{tmp}", str(tmp)) for c in command]
    result = run([*command, "-q"], stdin=b"\n".join(DUPLICATED) + b"\n")
    no_traceback(result)
    out = records(result.stdout)
    assert [r["reason"] for r in out] == ["schema"] * len(DUPLICATED)
    assert all("appears twice" in r["error"] for r in out)
    watched = orjson.loads(run(["watch", "--once", "--json", "-q"], stdin=b"\n".join(DUPLICATED)).stdout)
    assert watched["unreadable"] == len(DUPLICATED) and watched["windows"] == watched["metrics"] == 0


@pytest.mark.parametrize("args", [["validate", "-i", "{f}", "-o", "{f}"],
                                  ["validate", "-i", "{f}", "--dead-letter", "{f}"],
                                  ["audit", "-i", "{f}", "--jsonl", "{f}", "--db", "{tmp}/a.db"],
                                  ["aggregate", "-o", "{f}"]])
def test_an_output_that_is_the_input_file_is_refused(tmp, args) -> None:
    f = tmp / "f.ndjson"
    f.write_bytes(event(1, "2026-11-26T13:14:01Z") + b"\n")
    before = f.read_bytes()
    argv = [a.replace("{f}", str(f)).replace("{tmp}", str(tmp)) for a in args]
    with open(f, "rb") as stdin:
        import subprocess

        from tests.conftest import evtool_cmd
        result = subprocess.run(evtool_cmd(*argv), stdin=stdin, capture_output=True, timeout=60)
    assert result.returncode == 2 and b"is the input file" in result.stderr, result.stderr
    assert f.read_bytes() == before


# --- replay --verify recomputes what aggregate decided ------------------------------------------

def test_verify_is_clean_when_events_in_holds_events_aggregate_found_late(tmp) -> None:
    """As on the broker: audit stores every validated event, aggregate dead-letters some as late."""
    made = run(["gen", "--count", "4000", "--seed", "6", "--start", START, "--fast", "--rate", "50",
                "--out-of-order", "0.2", "--max-delay", "3", "-q"]).stdout
    valid = run(["validate", "-q"], stdin=made).stdout
    counted = run(["aggregate", "-q"], stdin=valid).stdout           # lateness 0: many are late
    late = [r for r in records(counted) if r.get("reason") == "late"]
    assert len(late) > 100 and all(r["window_seconds"] == 5 for r in late)
    db = tmp / "v.db"
    run(["audit", "--db", str(db), "-q"], stdin=valid + counted)
    verify = run(["replay", "--db", str(db), "--verify"])
    assert verify.returncode == 0 and b" 0 differences, 0 could not be checked" in verify.stderr, (
        verify.stdout[:500], verify.stderr)
    # without the late dead letters (never audited), verify says which metrics it cannot check
    db2 = tmp / "v2.db"
    metrics_only = b"".join(x + b"\n" for x in counted.splitlines() if b'"late"' not in x)
    run(["audit", "--db", str(db2), "-q"], stdin=valid + metrics_only)
    blind = run(["replay", "--db", str(db2), "--verify"])
    assert blind.returncode == 0 and b" 0 differences" in blind.stderr
    assert b"could not check" in blind.stdout and b"no late dead letter" in blind.stdout


def test_verify_is_clean_for_two_window_sizes_in_one_store(tmp) -> None:
    made = run(["gen", "--count", "3000", "--seed", "7", "--start", START, "--fast", "--rate", "40",
                "--out-of-order", "0.1", "--max-delay", "2", "-q"]).stdout
    valid = run(["validate", "-q"], stdin=made).stdout
    five = run(["aggregate", "--window", "5", "-q"], stdin=valid).stdout
    sixty = run(["aggregate", "--window", "60", "--lateness", "1", "-q"], stdin=valid).stdout
    db = tmp / "two.db"
    run(["audit", "--db", str(db), "-q"], stdin=valid + five + sixty)
    verify = run(["replay", "--db", str(db), "--verify"])
    assert verify.returncode == 0 and b" 0 differences, 0 could not be checked" in verify.stderr, (
        verify.stdout[:500], verify.stderr)


def test_verify_names_tampering_and_survives_a_zero_window(tmp) -> None:
    made = run(["gen", "--count", "500", "--seed", "8", "--start", START, "--fast", "-q"]).stdout
    db = tmp / "t.db"
    pipeline_out = run(["aggregate", "--forward", "-q"], stdin=run(["validate", "-q"], stdin=made).stdout)
    run(["audit", "--db", str(db), "-q"], stdin=pipeline_out.stdout)
    with sqlite3.connect(db) as conn:
        (victim,) = conn.execute("SELECT metric_id FROM metrics_out LIMIT 1").fetchone()
        conn.execute("DELETE FROM trace WHERE metric_id = ? AND event_id = (SELECT min(event_id) "
                     "FROM trace WHERE metric_id = ?)", (victim, victim))
        conn.execute("UPDATE metrics_out SET window_seconds = 0 WHERE metric_id != ?", (victim,))
    verify = run(["replay", "--db", str(db), "--verify"])
    no_traceback(verify)
    assert verify.returncode == 1 and verify.stdout.startswith(victim.encode())
    # a metric with no window is checked by its trace alone (lab3's metrics are such): intact here
    with sqlite3.connect(db) as conn:
        (metrics,) = conn.execute("SELECT count(*) FROM metrics_out").fetchone()
    assert f"verify: {metrics} of {metrics} metrics checked, 1 differences".encode() in verify.stderr
    assert b"no window" not in verify.stdout


def test_replay_leaves_out_rows_edited_past_replaying_and_says_so(tmp) -> None:
    """SQLite keeps whatever a hand writes in a column: an instant of text or a line of bytes is
    no crash of replay (nor of its hint), and is said, not silently missing."""
    made = run(["gen", "--count", "60", "--seed", "4", "--start", START, "--fast", "-q"]).stdout
    db = tmp / "t.db"
    assert run(["audit", "--db", str(db), "-q"], stdin=made).returncode == 0
    with sqlite3.connect(db) as conn:
        edited = [row[0] for row in conn.execute("SELECT raw FROM event_store ORDER BY ts_us DESC LIMIT 2")]
        conn.execute("UPDATE event_store SET ts_us = 'x' || ts_us WHERE raw = ?", (edited[0],))
        conn.execute("UPDATE event_store SET raw = CAST(raw AS BLOB) WHERE raw = ?", (edited[1],))
    # an instant of text lies in no time range: --since leaves it out before replay reads it
    for args, left_out in (([], 2), (["--speed", "1000000"], 2), (["-q"], 2),
                           (["--since", "2000-01-01T00:00:00Z"], 1)):
        replayed = run(["replay", "--db", str(db), *args])
        no_traceback(replayed)
        assert replayed.returncode == 0
        assert replayed.stdout.splitlines() == made.splitlines()[:-2], args
        assert f"{left_out} stored events not replayed: their ts_us is no integer".encode() in \
            replayed.stderr, args
    hint = run(["replay", "--db", str(db), "--since", "2100-01-01T00:00:00Z"])
    no_traceback(hint)
    assert f"its events run from {START[:19]}".encode() in hint.stderr


def test_replay_sends_stored_lines_as_their_bytes_and_reads_past_lines_that_are_no_json(tmp) -> None:
    """A line edited into text that is no UTF-8 once stopped replay at its decoding, and one that
    is no JSON stopped --region and --verify (SQLite's JSON functions refuse it): replay sends
    each line as stored, filters and verifies past them, and names what they changed."""
    made = run(["gen", "--count", "60", "--seed", "5", "--start", START, "--fast", "-q"]).stdout.splitlines()
    db = tmp / "u.db"
    counted = run(["aggregate", "--forward", "-q"], stdin=b"\n".join(made) + b"\n").stdout
    assert run(["audit", "--db", str(db), "-q"], stdin=counted).returncode == 0
    with sqlite3.connect(db) as conn:
        first, second, third = (orjson.loads(line)["event_id"] for line in made[:3])
        conn.execute("UPDATE event_store SET raw = CAST(x'7b22ff' AS TEXT) || substr(raw, 3) "
                     "WHERE event_id = ?", (first,))
        conn.execute("UPDATE event_store SET raw = 'not json' WHERE event_id = ?", (second,))
        conn.execute("UPDATE event_store SET ts_us = CAST(x'ff' AS TEXT) WHERE event_id = ?", (third,))
    replayed = run(["replay", "--db", str(db)])
    no_traceback(replayed)
    assert replayed.returncode == 0
    assert replayed.stdout.splitlines() == [b'{"\xff' + made[0][2:], b"not json", *made[3:]]
    assert b"1 stored events not replayed" in replayed.stderr
    region = orjson.loads(made[10])["region"]
    filtered = run(["replay", "--db", str(db), "--region", region, "-q"])
    no_traceback(filtered)
    assert filtered.stdout.splitlines() == [ln for ln in made[3:] if orjson.loads(ln)["region"] == region]
    verified = run(["replay", "--db", str(db), "--verify"])
    no_traceback(verified)
    assert verified.returncode == 1 and b"cannot read" not in verified.stderr
    assert orjson.loads(made[1])["region"].encode() in verified.stdout      # the metric it was in


def test_postgresql_audit_stores_an_event_holding_nul(pg_database) -> None:
    from tests.conftest import PG, psql

    nul = orjson.dumps({**EVENT, "payload": {**EVENT["payload"], "incident_type": "rob\x00bery"}})
    result = run(["audit", "--db", f"{PG}/{pg_database}", "-q"], stdin=nul + b"\n" + event(2, START) + b"\n")
    no_traceback(result)
    assert result.returncode == 0 and len(records(result.stdout)) == 2
    assert psql(pg_database, "SELECT count(*) FROM events_in") == "2"
    replayed = run(["replay", "--db", f"{PG}/{pg_database}", "-q"]).stdout.splitlines()
    assert nul in replayed                                   # the exact line, NUL escape and all


def test_audit_says_when_a_later_copy_of_a_metric_or_window_differs(tmp) -> None:
    made = run(["gen", "--count", "300", "--seed", "9", "--start", START, "--fast", "-q"]).stdout
    counted = records(run(["aggregate", "-q"], stdin=run(["validate", "-q"], stdin=made).stdout).stdout)
    metric = next(r for r in counted if r.get("kind") == "metric" and r["total"] >= 2)
    window = next(r for r in counted if r.get("kind") == "window")
    partial = {**metric, "total": metric["total"] - 1, "input_event_ids": metric["input_event_ids"][1:],
               "counts": {}}
    first, last = sorted(metric["counts"].items())[0], sorted(metric["counts"].items())[1:]
    partial["counts"] = {**dict(last), **({first[0]: first[1] - 1} if first[1] > 1 else {})}
    smaller = {**window, "total": 0, "event_ids": [], "by_source": {}, "by_region": {},
               "by_region_source": {}}
    db = tmp / "c.db"
    lines = [orjson.dumps(r) for r in (metric, window)]
    run(["audit", "--db", str(db), "-q"], stdin=b"\n".join(lines) + b"\n")
    again = [orjson.dumps(r) for r in (metric, partial, window, smaller)]
    result = run(["audit", "--db", str(db)], stdin=b"\n".join(again) + b"\n")
    no_traceback(result)
    out = records(result.stdout)
    assert [r.get("reason") for r in out] == [None, None, "conflict", "conflict"]
    assert f"total {metric['total']}, this one {partial['total']}" in out[2]["error"]
    assert b"(conflict 2)" in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT total FROM metrics_out WHERE metric_id = ?",
                            (metric["metric_id"],)).fetchone() == (metric["total"],)
        assert conn.execute("SELECT count(*) FROM deadletters WHERE reason = 'conflict'").fetchone() == (2,)


@pytest.mark.parametrize("edit, said", [("'x'", '"x"'), ("CAST(x'ff31' AS TEXT)", '"\ufffd1"')])
@pytest.mark.parametrize("table", ["metrics_out", "windows"])
def test_a_stored_total_edited_into_text_makes_a_conflict_not_a_stopped_writer(
        tmp, table: str, edit: str, said: str) -> None:
    """Audit again over a database whose totals a hand made text: int() of one stopped the
    writer process (audit exit 1, a traceback), and so did text that is no UTF-8 (exit 1 at its
    decoding, nothing forwarded); the copies that come again are conflicts."""
    made = run(["gen", "--count", "200", "--seed", "9", "--start", START, "--fast", "-q"]).stdout
    counted = run(["aggregate", "-q"], stdin=made).stdout
    db = tmp / "c.db"
    assert run(["audit", "--db", str(db), "-q"], stdin=counted).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE {table} SET total = {edit}")
        edited = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    result = run(["audit", "--db", str(db)], stdin=counted)
    no_traceback(result)
    assert result.returncode == 0
    letters = [r for r in records(result.stdout) if r.get("reason") == "conflict"]
    assert len(letters) == edited and all(f"the stored copy has total {said}" in r["error"] for r in letters)


def test_one_event_from_a_bad_clock_does_not_poison_the_stream() -> None:
    before = gen_lines(10, 1, start="2026-11-26T00:00:00Z")
    after = gen_lines(990, 2, start="2026-11-26T00:00:01Z")
    bad = event(999, "2099-01-01T00:00:00Z")
    out = records(run(["aggregate", "-q"], stdin=before + bad + b"\n" + after).stdout)
    dead = [r for r in out if r.get("kind") == "deadletter"]
    assert [r["reason"] for r in dead] == ["future"] and "--max-ahead" in dead[0]["error"]
    assert sum(w["total"] for w in out if w.get("kind") == "window") == 1000
    off = records(run(["aggregate", "-q", "--max-ahead", "0"], stdin=before + bad + b"\n" + after).stdout)
    assert sum(r.get("reason") == "late" for r in off) > 900          # what the guard prevents


# --- clear lines instead of internal errors ------------------------------------------------------

def test_clear_lines_where_there_were_internal_errors(tmp) -> None:
    events = gen_lines(20, 3)
    full = run(["audit", "--db", str(tmp / "f.db"), "--jsonl", "/dev/full", "-q"], stdin=events)
    no_traceback(full)
    assert full.returncode == 1 and b"cannot write /dev/full" in full.stderr
    (tmp / "schemas" / "x.json").mkdir(parents=True)
    folder = run(["validate", "--schema-dir", str(tmp / "schemas")], stdin=b"")
    no_traceback(folder)
    assert folder.returncode == 2 and b"x.json: not a file" in folder.stderr
    missing = run(["audit", "--db", str(tmp / "m.db"), "-q"],
                  stdin=b'{"event_id":"6f1c0000-0000-4000-8000-000000000001"}\n')
    assert orjson.loads(missing.stdout)["error"] == "cannot store: timestamp: missing"


@pytest.mark.parametrize("name", ["", ":memory:", "x.db?mode=memory", "a#b.db", "p%41.db"])
def test_a_db_path_is_a_path(tmp, name) -> None:
    import os
    import subprocess

    from tests.conftest import evtool_cmd

    result = subprocess.run(evtool_cmd("audit", "--db", name, "-q"), input=gen_lines(5, 1),
                            capture_output=True, cwd=tmp, timeout=60)
    if not name:
        assert result.returncode == 1 and b"needs a file path" in result.stderr
        return
    assert result.returncode == 0 and os.path.isfile(tmp / name), os.listdir(tmp)
    replayed = subprocess.run(evtool_cmd("replay", "--db", name, "-q"), capture_output=True, cwd=tmp,
                              timeout=60)
    assert len(replayed.stdout.splitlines()) == 5


def test_a_signal_while_a_pack_compiles_ends_the_stage_as_a_signal(monkeypatch, capsys) -> None:
    """A signal lands wherever the stage is; in the middle of compiling a schema (whose guard
    turns any Exception into a usage error) it must still end the stage with 130, not exit 2."""
    import signal

    import fastjsonschema

    from evtool.cli import run
    from evtool.runtime.loop import stop_at_once

    def interrupted(*_args, **_kwargs):
        stop_at_once(signal.SIGINT, None)

    monkeypatch.setattr(fastjsonschema, "compile", interrupted)
    assert run(["validate", "--pack", "lab3", "-i", "/dev/null"]) == 130
    assert "invalid JSON Schema" not in capsys.readouterr().err
