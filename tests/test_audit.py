"""audit and replay: the durable record, its trace, and recomputation from it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from evtool.store.engine import sqlite3
from tests.conftest import PG, evtool_cmd, gen_lines, records, run

GEN = ["--duplicates", "0.02", "--invalid", "0.02", "--out-of-order", "0.02", "--max-delay", "1"]


def upstream(count: int, seed: int = 11) -> bytes:
    """What audit sees in the contract's shape: gen | validate | aggregate --forward."""
    validated = run(["validate", "-q"], stdin=gen_lines(count, seed, *GEN)).stdout
    return run(["aggregate", "--forward", "--lateness", "1", "-q"], stdin=validated).stdout


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def counts(db: Path) -> dict[str, int]:
    return {t: rows(db, f"SELECT count(*) FROM {t}")[0][0]
            for t in ("events_in", "metrics_out", "trace", "windows", "deadletters", "alerts")}


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, bytes, bytes]:
    db = tmp_path_factory.mktemp("audit") / "a.db"
    data = upstream(20000)
    result = run(["audit", "--db", str(db), "-q"], stdin=data)
    assert result.returncode == 0, result.stderr
    return db, data, result.stdout


def test_database_holds_exactly_what_flowed(stored) -> None:
    db, data, forwarded = stored
    assert forwarded == data                                  # audit's output equals its input
    recs = records(data)
    events = [r for r in recs if "kind" not in r]
    metrics = [r for r in recs if r.get("kind") == "metric"]
    dead = {json.dumps(r, sort_keys=True) for r in recs if r.get("kind") == "deadletter"}
    assert len(events) == len({e["event_id"] for e in events})   # aggregate absorbed duplicates
    assert {r[0] for r in rows(db, "SELECT event_id FROM events_in")} == {e["event_id"] for e in events}
    assert {r[0]: r[1] for r in rows(db, "SELECT metric_id, total FROM metrics_out")} == {
        m["metric_id"]: m["total"] for m in metrics}
    assert set(rows(db, "SELECT metric_id, event_id FROM trace")) == {
        (m["metric_id"], e) for m in metrics for e in m["input_event_ids"]}
    stored_dead = {json.dumps(json.loads(r[0]), sort_keys=True)
                   for r in rows(db, "SELECT record FROM deadletters")}
    assert stored_dead == dead and len(dead) > 100
    assert counts(db)["windows"] == sum(1 for r in recs if r.get("kind") == "window")


def test_raw_json_is_kept_byte_for_byte(stored) -> None:
    db, data, _ = stored
    lines = {orjson.loads(x)["event_id"]: x.decode() for x in data.splitlines()
             if b'"kind"' not in x}
    for event_id, raw in rows(db, "SELECT event_id, raw FROM events_in LIMIT 500"):
        assert raw == lines[event_id]


def test_running_again_changes_no_row_count(stored, tmp_path) -> None:
    db, data, _ = stored
    copy = tmp_path / "again.db"
    copy.write_bytes(db.read_bytes())
    before = counts(copy)
    assert run(["audit", "--db", str(copy), "-q"], stdin=data).returncode == 0
    assert counts(copy) == before


def test_replay_recomputes_the_same_metrics(stored) -> None:
    db, data, _ = stored
    shell = (f"{' '.join(evtool_cmd('replay', '--db', str(db), '-q'))} | "
             f"{' '.join(evtool_cmd('validate', '-q'))} | {' '.join(evtool_cmd('aggregate', '-q'))}")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, check=True).stdout
    again = {r["metric_id"]: r["total"] for r in records(out) if r["kind"] == "metric"}
    first = {r["metric_id"]: r["total"] for r in records(data) if r.get("kind") == "metric"}
    assert again == first


def test_replay_order_and_metric_filter(stored) -> None:
    db, data, _ = stored
    out = run(["replay", "--db", str(db), "-q"]).stdout
    events = records(out)
    keys = [(e["timestamp"], e["event_id"]) for e in events]
    assert keys == sorted(keys)
    metric = next(r for r in records(data) if r.get("kind") == "metric" and r["total"] >= 3)
    picked = records(run(["replay", "--db", str(db), "--metric-id", metric["metric_id"], "-q"]).stdout)
    assert sorted(e["event_id"] for e in picked) == sorted(metric["input_event_ids"])


@pytest.mark.parametrize("asked", ["", "no-such-metric"])
def test_a_metric_id_that_names_no_metric_is_said_not_answered_empty(stored, asked) -> None:
    db, _, _ = stored
    result = run(["replay", "--db", str(db), "--metric-id", asked])
    assert result.returncode == 2 and result.stdout == b""
    assert f"--metric-id {asked!r}: no such metric in {db}".encode() in result.stderr


def test_a_time_range_that_misses_every_event_says_where_they_are(stored) -> None:
    db, data, _ = stored
    times = sorted(r["timestamp"] for r in records(data) if "kind" not in r)
    result = run(["replay", "--db", str(db), "--since", "2001-01-01T00:00:00Z",
                  "--until", "2001-01-02T00:00:00Z"])
    assert result.returncode == 0 and result.stdout == b""
    assert b"no stored event matches" in result.stderr and times[0][:19].encode() in result.stderr


def test_verify_passes_then_names_a_tampered_metric(stored, tmp_path) -> None:
    db, _, _ = stored
    result = run(["replay", "--db", str(db), "--verify"])
    assert result.returncode == 0, result.stdout
    assert b"0 differences" in result.stderr
    tampered = tmp_path / "t.db"
    tampered.write_bytes(db.read_bytes())
    (metric_id,) = rows(tampered, "SELECT metric_id FROM metrics_out LIMIT 1 OFFSET 7")[0]
    with sqlite3.connect(tampered) as conn:
        conn.execute("UPDATE metrics_out SET total = total + 1 WHERE metric_id = ?", (metric_id,))
    result = run(["replay", "--db", str(tampered), "--verify"])
    assert result.returncode == 1
    assert result.stdout.decode().splitlines()[0].startswith(metric_id)
    assert b"stored total" in result.stdout


def test_filters_and_instants_across_offsets(tmp_path) -> None:
    db = tmp_path / "f.db"
    base = orjson.loads(gen_lines(1, 1))

    def at(ts: str, source: str = "security.incident", region: str = "maule") -> bytes:
        ev = {**base, "event_id": f"00000000-0000-4000-8000-{abs(hash(ts + region)) % 10**12:012d}",
              "timestamp": ts, "source": source, "region": region}
        return orjson.dumps(ev)

    lines = [at("2026-11-26T10:00:00+05:00"),        # 05:00Z
             at("2026-11-26T06:00:00Z", region="aysen"),
             at("2026-11-26T02:00:00-05:00", "migration.case")]  # 07:00Z
    run(["audit", "--db", str(db), "-q"], stdin=b"\n".join(lines) + b"\n")
    replayed = run(["replay", "--db", str(db), "-q"]).stdout.splitlines()
    assert replayed == lines                          # by instant, not by string
    since = run(["replay", "--db", str(db), "-q", "--since", "2026-11-26T06:00:00Z"]).stdout
    assert since.splitlines() == lines[1:]
    until = run(["replay", "--db", str(db), "-q", "--until", "2026-11-26T06:00:00Z"]).stdout
    assert until.splitlines() == lines[:1]
    assert run(["replay", "--db", str(db), "-q", "--region", "aysen"]).stdout.splitlines() == [lines[1]]
    assert run(["replay", "--db", str(db), "-q", "--source", "migration.case"]).stdout.splitlines() == [
        lines[2]]


ROOT = Path(__file__).resolve().parent.parent


def _filtered(pack: str, db: str) -> None:
    """replay --pack P --region/--source give exactly the stored events of that region and
    source, read where P's pack.json says (independently of evtool's roles code here)."""
    folder = ROOT / pack if "/" in pack else ROOT / "evtool" / "schemas" / "packs" / pack
    meta = json.loads((folder / "pack.json").read_text())
    fields = meta.get("fields") or {}
    made = run(["gen", "--pack", pack, "--count", "600", "--seed", "4", "--fast", "-q"]).stdout
    assert run(["audit", "--pack", pack, "--db", db, "-q"], stdin=made).returncode == 0

    def role(event: dict, name: str, absent: str) -> str:
        pointer = fields.get(name, f"/{name}")
        if pointer is None:
            return absent
        for token in pointer.split("/")[1:]:
            event = event[token]
        return str(event)

    events = [(line, orjson.loads(line)) for line in made.splitlines()]
    only_source = next(iter(meta["sources"])) if len(meta["sources"]) == 1 else ""
    region = role(events[0][1], "region", "all")
    source = role(events[-1][1], "source", only_source)
    for asked in (["--region", region], ["--source", source], ["--region", region, "--source", source],
                  ["--region", "no-such-region"]):
        got = run(["replay", "--pack", pack, "--db", db, "-q", *asked]).stdout.splitlines()
        want = [line for line, e in events
                if ("--region" not in asked or role(e, "region", "all") == asked[asked.index("--region") + 1])
                and ("--source" not in asked or role(e, "source", only_source) == source)]
        assert sorted(got) == sorted(want) and (got or asked[1] == "no-such-region"), asked


@pytest.mark.parametrize("pack", ["cloudevents", "examples/packs/downloads", "evtool"])
def test_region_and_source_filters_read_where_the_pack_keeps_them(tmp_path, pack: str) -> None:
    """The filters read the columns evtool's layout fills (/region, /source): a CloudEvent keeps
    its region at /source and its source at /type, so `replay --pack cloudevents --region R`
    matched no event at all, and said nothing."""
    _filtered(pack, str(tmp_path / "f.db"))


def test_region_and_source_filters_read_the_packs_roles_on_postgresql(pg_database: str) -> None:
    _filtered("cloudevents", f"{PG}/{pg_database}")


def test_hostile_ids_are_stored_verbatim(tmp_path) -> None:
    db = tmp_path / "h.db"
    hostile = "'); DROP TABLE events_in;--"
    ev = {**orjson.loads(gen_lines(1, 1)), "event_id": hostile}
    run(["audit", "--db", str(db), "-q"], stdin=orjson.dumps(ev) + b"\n")
    assert rows(db, "SELECT event_id FROM events_in") == [(hostile,)]
    out = run(["replay", "--db", str(db), "-q", "--region", hostile])
    assert out.returncode == 0 and out.stdout == b""
    unknown = run(["replay", "--db", str(db), "-q", "--metric-id", hostile])
    assert unknown.returncode == 2 and b"no such metric" in unknown.stderr
    assert rows(db, "SELECT event_id FROM events_in") == [(hostile,)]


def test_speed_paces_by_event_time(tmp_path) -> None:
    db = tmp_path / "s.db"
    run(["audit", "--db", str(db), "-q"], stdin=gen_lines(40, 1, "--rate", "10"))   # ~4 s of event time
    started = time.monotonic()
    out = run(["replay", "--db", str(db), "-q", "--speed", "4"]).stdout
    assert len(out.splitlines()) == 40
    assert 0.6 < time.monotonic() - started < 3


def test_jsonl_log_gets_every_stored_record(tmp_path) -> None:
    db, log = tmp_path / "j.db", tmp_path / "log.jsonl"
    data = upstream(500, 3)
    run(["audit", "--db", str(db), "--jsonl", str(log), "-q"], stdin=data)
    assert log.read_bytes() == data


def test_unusable_databases_are_one_line_errors(tmp_path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    result = run(["audit", "--db", str(newer)], stdin=b"")
    assert result.returncode == 1 and b"schema version 99" in result.stderr
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE x (y)")
    result = run(["replay", "--db", str(foreign)])
    assert result.returncode == 1 and b"not an evtool audit database" in result.stderr
    assert b"Traceback" not in result.stderr
    missing = run(["replay", "--db", str(tmp_path / "nope.db")])
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1


def test_garbage_in_audit_input_becomes_stored_dead_letters(tmp_path) -> None:
    db = tmp_path / "g.db"
    result = run(["audit", "--db", str(db), "-q"],
                 stdin=b'not json\n{"kind":"metric","metric_id":"m"}\n{"no":"id"}\n')
    reasons = [r["reason"] for r in records(result.stdout)]
    assert reasons == ["json", "schema", "schema"]
    assert counts(db)["deadletters"] == 3


def test_verify_knows_an_event_late_under_two_window_sizes(tmp) -> None:
    """Two aggregates of one stream, 5 s and 10 s windows, audited into one store: an event late
    for both is explained for both, so nothing is left that 'could not be checked'."""
    events = run(["validate", "-q"], stdin=gen_lines(3000, 12, "--out-of-order", "0.3",
                                                      "--max-delay", "30", "--rate", "50")).stdout
    db = tmp / "two.db"
    for window in ("5", "10"):
        counted = run(["aggregate", "--window", window, "--forward", "--no-alerts", "-q"], stdin=events)
        assert run(["audit", "--db", str(db), "-q", "-o", "/dev/null"], stdin=counted.stdout).returncode == 0
    with sqlite3.connect(db) as conn:
        twice = conn.execute("SELECT count(*) FROM (SELECT json_extract(record, '$.event_id') AS e "
                             "FROM deadletters WHERE reason = 'late' GROUP BY e HAVING count(*) = 2)"
                             ).fetchone()[0]
    assert twice > 0                                  # the case this is about happened
    verified = run(["replay", "--db", str(db), "--verify"])
    assert verified.returncode == 0 and b"could not check" not in verified.stdout, verified.stdout[:500]


def test_the_first_copy_of_an_id_counts_for_aggregate_as_for_audit(tmp) -> None:
    """An id sent twice with other content, the first copy late: aggregate must not count the
    second while audit keeps the first, or verify finds a traced event outside its window."""
    ahead, late = (orjson.loads(x) for x in gen_lines(2, 13, "--rate", "0.01").splitlines())
    assert late["timestamp"] > ahead["timestamp"]
    ahead, late = late, ahead                             # the later one first: the other is late
    again = {**late, "timestamp": ahead["timestamp"]}      # the same id, now in an open window
    stream = b"\n".join(orjson.dumps(e) for e in (ahead, late, again)) + b"\n"
    counted = run(["aggregate", "--forward", "--no-alerts"], stdin=stream)
    out = records(counted.stdout)
    assert [r["reason"] for r in out if r.get("kind") == "deadletter"] == ["late"]
    assert sum(r["total"] for r in out if r.get("kind") == "metric") == 1
    assert b"1 duplicates" in counted.stderr
    db = tmp / "first.db"
    stored = run(["audit", "--db", str(db), "-q", "-o", "/dev/null"], stdin=counted.stdout + stream)
    assert stored.returncode == 0
    verified = run(["replay", "--db", str(db), "--verify"])
    assert verified.returncode == 0 and b"could not check" not in verified.stdout, verified.stdout


def test_replay_reads_a_database_on_a_read_only_filesystem(tmp) -> None:
    """SQLite cannot make its lock files there: with no write-ahead log left to read, replay opens
    the file as immutable instead of failing."""
    mount = tmp / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a filesystem here")
    try:
        made = run(["validate", "-q"], stdin=gen_lines(200, 14)).stdout
        counted = run(["aggregate", "--forward", "-q"], stdin=made).stdout
        assert run(["audit", "--db", str(mount / "a.db"), "-q", "-o", "/dev/null"],
                   stdin=counted).returncode == 0
        assert not (mount / "a.db-wal").exists() or (mount / "a.db-wal").stat().st_size == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        replayed = run(["replay", "--db", str(mount / "a.db")])
        assert replayed.returncode == 0, replayed.stderr
        assert sorted(replayed.stdout.splitlines()) == sorted(made.splitlines())
        assert run(["replay", "--db", str(mount / "a.db"), "--verify", "-q"]).returncode == 0
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_store_whose_views_are_not_evtools_is_refused_not_read_for_ever(tmp) -> None:
    db = tmp / "a.db"
    assert run(["audit", "--db", str(db), "-q", "-o", "/dev/null"], stdin=gen_lines(20, 15)).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DROP VIEW events_in")
        conn.execute("CREATE VIEW events_in AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                     "FROM r) SELECT 'e' || x AS event_id, '2026-11-26T00:00:00Z' AS timestamp, "
                     "'r' AS region, 's' AS source, '1.0' AS schema_version, 'c' AS correlation_id, "
                     "'{}' AS payload, '{}' AS raw, 'now' AS received_at, 1 AS ts_us FROM r")
    for args in (["replay", "--db", str(db)], ["replay", "--db", str(db), "--verify"]):
        result = run(args, timeout=30)
        assert result.returncode == 1 and b"is not the view evtool writes" in result.stderr
