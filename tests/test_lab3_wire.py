"""evtool stages dropped into a lab3 pipeline, one service at a time, on the real broker.

lab3's topology is built here by hand with pika from what its services declare (not from
evtool's code), and its services' roles are played on the wire: lab3-shaped events published,
what lab3's audit and dashboard read consumed. Each evtool stage then takes one service's place.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import pika
import pytest

from evtool.store.engine import sqlite3
from tests.conftest import drained, evtool_cmd, run, tapped
from tests.test_packs import FIXTURE, lab3_accepts

pytestmark = pytest.mark.broker
SOURCES = ("security.incident", "survey.victimization", "migration.case")


def lab3_topology(url: str) -> None:
    """What lab3's publisher, validator, aggregator, audit and dashboard declare."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for name in ("events_exchange", "processing_exchange", "analytics_exchange"):
        ch.exchange_declare(name, "topic", durable=True)
    ch.exchange_declare("dlq_exchange", "direct", durable=True)
    ch.queue_declare("validator_input_queue", durable=True)
    for key in SOURCES:
        ch.queue_bind("validator_input_queue", "events_exchange", key)
    for queue in ("aggregator_queue", "audit_queue"):
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, "processing_exchange", "#")
    ch.queue_declare("audit_metrics_queue", durable=True)
    ch.queue_bind("audit_metrics_queue", "analytics_exchange", "metrics.daily")
    ch.queue_declare("dashboard_tap", durable=True)       # the dashboard's queue, named to inspect
    ch.queue_bind("dashboard_tap", "analytics_exchange", "#")
    conn.close()


def publish(url: str, exchange: str, messages: list[tuple[str, bytes]]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for key, body in messages:
        ch.basic_publish(exchange, key, body, pika.BasicProperties(delivery_mode=2,
                                                                   content_type="application/json"))
    conn.close()


def drain(url: str, queue: str) -> list[bytes]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    bodies = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body)
    conn.close()
    return bodies


def depth(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    count = conn.channel().queue_declare(queue, passive=True).method.message_count
    conn.close()
    return count


def running(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(evtool_cmd(*args, "--pack", "lab3", "--amqp-url", url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def eventually(check, timeout: float = 60) -> None:
    """Wait for what the test needs to see, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> bytes:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and b"Traceback" not in err, err
    return err


def lab3_events() -> list[dict]:
    return [orjson.loads(x) for x in FIXTURE.read_bytes().splitlines()]


def test_gen_in_place_of_lab3s_publisher(vhost) -> None:
    lab3_topology(vhost)
    result = run(["gen", "--pack", "lab3", "--count", "300", "--fast", "--seed", "3", "-o", "amqp",
                  "--amqp-url", vhost], timeout=60)
    assert result.returncode == 0, result.stderr
    bodies = drain(vhost, "validator_input_queue")
    assert len(bodies) == 300 and all(lab3_accepts(orjson.loads(b)) for b in bodies)


def test_gen_counts_what_lab3s_bindings_drop_apart_from_out(vhost) -> None:
    """lab3's validator binds its three sources only: a broken event with another source is
    dropped by the broker, and gen must not call it out."""
    lab3_topology(vhost)
    result = run(["gen", "--pack", "lab3", "--count", "400", "--fast", "--seed", "3", "--invalid", "0.5",
                  "-o", "amqp", "--amqp-url", vhost], timeout=60)
    assert result.returncode == 0, result.stderr
    queued = len(drain(vhost, "validator_input_queue"))
    summary = result.stderr.decode().splitlines()[-1]
    assert 0 < queued < 400
    assert f"{queued} out" in summary and f"{400 - queued} dropped by the broker" in summary, summary


def test_validate_in_place_of_lab3s_validator(vhost) -> None:
    lab3_topology(vhost)
    good = lab3_events()
    bad = [{**good[0], "region": "metropolitana"}, {**good[1], "payload": {}}]
    publish(vhost, "events_exchange", [(e["source"], json.dumps(e).encode()) for e in good + bad]
            + [("security.incident", b"not json")])
    proc = running(vhost, "validate", "-i", "amqp", "-o", "amqp")
    eventually(lambda: depth(vhost, "audit_queue") == len(good)
               and depth(vhost, "deadletter.validation") == 3)
    stop(proc)
    for queue in ("aggregator_queue", "audit_queue"):
        assert len(drain(vhost, queue)) == len(good)
    letters = [orjson.loads(b) for b in drain(vhost, "deadletter.validation")]
    assert len(letters) == 3
    for letter in letters:                                # lab3's shape, evtool's beside it
        assert {"original_event", "error", "failed_at", "service"} <= letter.keys()
        assert letter["service"] == "validator" and letter["failed_at"].endswith("Z")
    assert "not json" in [x["original_event"] for x in letters]


def test_aggregate_in_place_of_lab3s_aggregator(vhost) -> None:
    lab3_topology(vhost)
    events = lab3_events()
    publish(vhost, "processing_exchange", [(e["source"], json.dumps(e).encode()) for e in events * 2])
    proc = running(vhost, "aggregate", "-i", "amqp", "-o", "amqp", "--window", "1", "--idle-flush", "1",
                   "--lateness", "600")
    metrics: list[dict] = []
    tapped: list[dict] = []

    def counted(records: list[dict], queue: str, total) -> bool:
        records += [orjson.loads(b) for b in drain(vhost, queue)]
        return total(records) >= len(events)

    def in_metrics(found: list[dict]) -> int:
        return sum(sum(m["metrics"].values()) for m in found)

    def in_summaries(found: list[dict]) -> int:
        return sum(sum(by.values()) for s in found if s.get("type") == "window_summary"
                   for by in s["stats_by_region"].values())

    eventually(lambda: counted(metrics, "audit_metrics_queue", in_metrics))     # the idle flush came
    eventually(lambda: counted(tapped, "dashboard_tap", in_summaries))
    stop(proc)
    metrics += [orjson.loads(b) for b in drain(vhost, "audit_metrics_queue")]
    assert sum(sum(m["metrics"].values()) for m in metrics) == len(events)     # duplicates absorbed
    assert all(m["run_id"] == "default" and m["input_event_ids"] for m in metrics)
    tapped += [orjson.loads(b) for b in drain(vhost, "dashboard_tap")]
    assert in_summaries(tapped) == len(events)
    assert depth(vhost, "audit_queue") == 2 * len(events)     # aggregate adds nothing to audit's queue


def test_audit_in_place_of_lab3s_audit(vhost, tmp) -> None:
    lab3_topology(vhost)
    events = lab3_events()
    regions = sorted({e["region"] for e in events})
    metrics = [{"metric_id": str(uuid.uuid4()), "date": "2026-11-26", "region": region, "run_id": "default",
                "metrics": {"security.incident": sum(1 for e in events if e["region"] == region)},
                "input_event_ids": sorted(e["event_id"] for e in events if e["region"] == region)}
               for region in regions]
    publish(vhost, "processing_exchange", [(e["source"], json.dumps(e).encode()) for e in events])
    publish(vhost, "analytics_exchange", [("metrics.daily", json.dumps(m).encode()) for m in metrics * 2])
    db = tmp / "audit.db"
    proc = running(vhost, "audit", "-i", "amqp", "--db", str(db), "-o", str(tmp / "out.ndjson"))
    def stored() -> tuple[int, int]:
        if not db.exists():
            return 0, 0
        try:
            with sqlite3.connect(db) as conn:
                return (conn.execute("SELECT count(*) FROM events_in").fetchone()[0],
                        conn.execute("SELECT count(*) FROM metrics_out").fetchone()[0])
        except sqlite3.OperationalError:
            return 0, 0

    eventually(lambda: stored() == (len(events), len(metrics)))
    stop(proc)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events_in").fetchone() == (len(events),)
        assert conn.execute("SELECT count(*) FROM metrics_out").fetchone() == (len(metrics),)
        assert conn.execute("SELECT count(*) FROM trace").fetchone() == (len(events),)
        assert conn.execute("SELECT count(*) FROM deadletters").fetchone() == (0,)


def test_watch_shows_lab3s_window_summaries(vhost) -> None:
    lab3_topology(vhost)
    proc = running(vhost, "watch", "-i", "amqp", "--once", "--json")
    tapped(vhost, "analytics_exchange")
    summary = {"type": "window_summary", "window_start_iso": "2026-11-26T13:00:00.123456",
               "window_end_iso": "2026-11-26T13:00:05.2", "total_processed": 7,
               "stats_by_region": {"norte": {"security.incident": 4}, "sur": {"migration.case": 3}}}
    publish(vhost, "analytics_exchange", [("analytics.window", json.dumps(summary).encode())] * 1
            + [("analytics.window", json.dumps({**summary, "window_start_iso": "2026-11-26T13:00:05.2",
                                                "window_end_iso": "2026-11-26T13:00:10.9"}).encode())])
    drained(vhost)                                      # both taken and acked by watch
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err
    snap = json.loads(out)
    assert snap["windows"] == 2 and snap["totals"]["total"] == 14
    assert snap["totals"]["by_region"] == {"norte": 8, "sur": 6}


def lab3_audit_db(path: Path, events: list[dict]) -> None:
    """A database in lab3's audit schema (its tables and columns), holding these events."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events_in (event_id TEXT PRIMARY KEY, timestamp TEXT NOT NULL, "
                     "region TEXT NOT NULL, source TEXT NOT NULL, schema_version TEXT, correlation_id "
                     "TEXT, payload_json TEXT NOT NULL, run_id TEXT DEFAULT 'default', inserted_at TEXT)")
        conn.execute("CREATE TABLE metrics_out (metric_id TEXT PRIMARY KEY, date TEXT NOT NULL, "
                     "region TEXT NOT NULL, run_id TEXT DEFAULT 'default', metrics_json TEXT NOT NULL, "
                     "created_at TEXT)")
        conn.execute("CREATE TABLE trace (event_id TEXT NOT NULL, metric_id TEXT NOT NULL, "
                     "contribution_type TEXT DEFAULT 'window_member', PRIMARY KEY (event_id, metric_id))")
        conn.executemany("INSERT INTO events_in (event_id, timestamp, region, source, schema_version, "
                         "correlation_id, payload_json) VALUES (?,?,?,?,?,?,?)",
                         [(e["event_id"], e["timestamp"], e["region"], e["source"], e["schema_version"],
                           e["correlation_id"], json.dumps(e["payload"])) for e in events])


@pytest.mark.parametrize("kind", ["audit.db", "audit_log.jsonl"])
def test_replay_reads_lab3s_records(tmp, kind) -> None:
    events = lab3_events()
    path = tmp / kind
    if kind == "audit.db":
        lab3_audit_db(path, events)
    else:                                                     # every delivery, redeliveries too
        path.write_text("".join(json.dumps({"audit_timestamp": "2026-11-26T23:30:29.1",
                                            "event_content": e}) + "\n" for e in events + events[:5]))
    replayed = run(["replay", "--db", str(path)])
    assert replayed.returncode == 0 and f"lab3's {kind}".encode() in replayed.stderr
    got = [orjson.loads(x) for x in replayed.stdout.splitlines()]
    assert sorted(e["event_id"] for e in got) == sorted(e["event_id"] for e in events)
    counted = run(["aggregate", "-q", "--window", "3600"], stdin=run(
        ["validate", "--pack", "lab3", "-q"], stdin=replayed.stdout).stdout)
    by_region: dict[str, int] = {}
    for rec in map(orjson.loads, counted.stdout.splitlines()):
        if rec.get("kind") == "metric":
            by_region[rec["region"]] = by_region.get(rec["region"], 0) + rec["total"]
    want: dict[str, int] = {}
    for e in events:
        want[e["region"]] = want.get(e["region"], 0) + 1
    assert by_region == want


def lab3_metrics(events: list[dict]) -> list[dict]:
    """Metrics as lab3's aggregator sends them: a day and a region, counts by source, the ids."""
    by_region: dict[str, list[dict]] = {}
    for e in events:
        by_region.setdefault(e["region"], []).append(e)
    metrics = []
    for region, held in sorted(by_region.items()):
        counts: dict[str, int] = {}
        for e in held:
            counts[e["source"]] = counts.get(e["source"], 0) + 1
        metrics.append({"metric_id": str(uuid.uuid4()), "date": "2026-12-02", "region": region,
                        "metrics": counts, "input_event_ids": [e["event_id"] for e in held],
                        "run_id": "default"})
    return metrics


def test_verify_checks_lab3s_metrics_by_their_trace(tmp) -> None:
    made = run(["gen", "--pack", "lab3", "--count", "300", "--fast", "--seed", "4", "-q"]).stdout
    events = [orjson.loads(x) for x in made.splitlines()]
    metrics = lab3_metrics(events)
    wrong = metrics[1]
    wrong["metrics"][sorted(wrong["metrics"])[0]] += 1
    db = tmp / "audit.db"
    stored = run(["audit", "--pack", "lab3", "--db", str(db), "-q"],
                 stdin=made + b"".join(orjson.dumps(m) + b"\n" for m in metrics))
    assert stored.returncode == 0, stored.stderr
    verify = run(["replay", "--db", str(db), "--verify"])
    (difference,) = verify.stdout.decode().splitlines()
    assert verify.returncode == 1 and difference.startswith(wrong["metric_id"])
    assert "recomputed from its trace" in difference
    n = len(metrics)
    assert f"verify: {n} of {n} metrics checked, 1 differences".encode() in verify.stderr


def test_replay_of_lab3_db_with_blob_ids_says_what_it_skipped(tmp) -> None:
    events = lab3_events()
    path = tmp / "audit.db"
    lab3_audit_db(path, events[1:])
    with sqlite3.connect(path) as conn:                # ids bound as bytes: one UTF-8, one not
        first = events[0]
        for event_id in (first["event_id"].encode(), b"\xff\xfe"):
            conn.execute("INSERT INTO events_in (event_id, timestamp, region, source, schema_version, "
                         "correlation_id, payload_json) VALUES (?,?,?,?,?,?,?)",
                         (event_id, first["timestamp"], first["region"], first["source"],
                          first["schema_version"], first["correlation_id"], json.dumps(first["payload"])))
    replayed = run(["replay", "--db", str(path)])
    assert replayed.returncode == 0 and b"Traceback" not in replayed.stderr, replayed.stderr
    assert len(replayed.stdout.splitlines()) == len(events)
    assert b"1 of lab3's records skipped" in replayed.stderr


COLUMNS = ["event_id", "timestamp", "region", "source", "schema_version", "correlation_id", "payload_json"]


@pytest.mark.parametrize("column", COLUMNS)
def test_replay_of_lab3_db_skips_a_row_of_text_that_is_no_utf8(tmp, column: str) -> None:
    """A column a hand made text that is no UTF-8 stopped the whole replay at its decoding, no
    event out: now that row is skipped and said, and every other one replays, whole."""
    events = lab3_events()
    path = tmp / "audit.db"
    lab3_audit_db(path, events)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE events_in SET {column} = CAST(x'ff' AS TEXT) || {column} "
                     "WHERE event_id = ?", (events[3]["event_id"],))
    replayed = run(["replay", "--db", str(path)])
    assert replayed.returncode == 0, replayed.stderr
    assert b"1 of lab3's records skipped" in replayed.stderr
    got = sorted((orjson.loads(line) for line in replayed.stdout.splitlines()), key=lambda e: e["event_id"])
    assert got == sorted(events[:3] + events[4:], key=lambda e: e["event_id"])


def test_replay_of_plain_ndjson_is_a_usage_error(tmp) -> None:
    path = tmp / "events.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in lab3_events()) + b"\n")
    replayed = run(["replay", "--db", str(path)])
    assert replayed.returncode == 2 and b"neither an audit database" in replayed.stderr
