"""Roles: a pack says where its events keep id, time, source, region and payload (JSON Pointers), and
validate, aggregate and audit read them there; counted against windows worked out here by hand."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from evtool.core.pack import PackError
from evtool.core.roles import MISSING, RoleError, Roles, content_id, parse_pointer, resolve
from evtool.schemas import load_pack
from evtool.store.engine import sqlite3
from tests.conftest import consuming, evtool_cmd, records, run
from tests.test_packs import write_pack

ROOT = Path(__file__).resolve().parent.parent
DOWNLOADS = str(ROOT / "examples" / "packs" / "downloads")
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)

# epoch milliseconds, nested pointers, the source in a field called `kind`
SENSORS: dict[str, Any] = {
    "pack.json": {"name": "sensors", "description": "nested roles, epoch milliseconds",
                  "sources": {"temp": 1, "door": 1},
                  "fields": {"id": "/meta/id", "time": "/ts", "source": "/kind",
                             "region": "/meta/site", "payload": "/body"},
                  "time_unit": "ms"},
    "envelope.json": {"type": "object", "required": ["meta", "ts", "kind", "body"],
                      "properties": {"meta": {"type": "object", "required": ["id", "site"],
                                              "properties": {"id": {"type": "string"},
                                                             "site": {"enum": ["north", "south"]}}},
                                     "ts": {"type": "integer"}, "kind": {"type": "string"},
                                     "body": {"type": "object"}}},
    "payloads/temp.json": {"type": "object", "required": ["celsius"],
                           "properties": {"celsius": {"type": "number"}}},
    "payloads/door.json": {"type": "object", "required": ["open"],
                           "properties": {"open": {"type": "boolean"}}},
}


def lines(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def windows_of(out: bytes) -> dict[str, dict[str, Any]]:
    return {r["window_start"]: r for r in records(out) if r.get("kind") == "window"}


def test_pointers_follow_rfc_6901() -> None:
    doc = {"a/b": {"m~n": [10, {"x": 1}]}, "": 5}
    assert resolve(doc, parse_pointer("/a~1b/m~0n/1/x")) == 1
    assert resolve(doc, parse_pointer("/")) == 5
    assert resolve(doc, parse_pointer("")) is doc
    for missing in ("/a~1b/m~0n/2", "/a~1b/m~0n/01", "/nope", "/a~1b/m~0n/0/x"):
        assert resolve(doc, parse_pointer(missing)) is MISSING
    for bad in ("a", "/x~2", "/x~"):
        with pytest.raises(ValueError):
            parse_pointer(bad)


def test_a_content_id_ignores_key_order_and_whitespace_only() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": "é"}}
    same = json.loads('{"a": {"x": "é", "y": [1, 2]},   "b": 1}')
    canonical = json.dumps(a, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert content_id(a) == content_id(same) == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert content_id({**a, "b": 2}) != content_id(a)


def test_times_read_as_the_pack_says() -> None:
    ms = Roles(time="/ts", time_unit="ms")
    assert ms.time_us({"ts": 1_795_000_000_123}) == 1_795_000_000_123_000
    with pytest.raises(RoleError, match="ts: not a number of ms since the epoch"):
        ms.time_us({"ts": "1795000000123"})
    with pytest.raises(RoleError, match="ts: missing"):
        ms.time_us({})
    naive = Roles(time_zone="UTC")
    assert naive.time_us({"timestamp": "1970-01-01T00:00:01.5"}) == 1_500_000
    assert Roles(time_zone="-03:00").time_us({"timestamp": "1970-01-01T00:00:00"}) == 3 * 3600 * 10**6
    assert naive.time_us({"timestamp": "1970-01-01T00:00:01+00:01"}) == -59 * 10**6   # an offset wins
    with pytest.raises(RoleError, match="timestamp"):
        Roles().time_us({"timestamp": "1970-01-01T00:00:01"})                  # no zone: offset needed


@pytest.mark.parametrize(("fields", "meta", "says"), [
    ({"id": 5}, {}, "fields.id must be a JSON Pointer or null"),
    ({"time": None}, {}, "fields.time must be a JSON Pointer"),
    ({"when": "/t"}, {}, "fields.when is not a role"),
    ({"region": "meta/site"}, {}, "fields.region: 'meta/site' is not a JSON Pointer"),
    ({}, {"time_zone": "Europe/Paris"}, "time_zone must be"),
    ({}, {"time_unit": "ns"}, "time_unit must be one of s, ms, us"),
    ({"source": None}, {}, "fields.source is null, so the pack needs exactly one"),
    ({}, {"unknown_sources": "maybe"}, "unknown_sources must be"),
])
def test_a_broken_role_is_refused_at_load_naming_the_field(tmp_path: Path, fields: dict, meta: dict,
                                                           says: str) -> None:
    pack_json = {**SENSORS["pack.json"], **meta}
    pack_json["fields"] = {**pack_json["fields"], **fields}
    folder = write_pack(tmp_path / "p", {**SENSORS, "pack.json": pack_json})
    with pytest.raises(PackError, match=re.escape("pack.json: " + says)):
        load_pack(str(folder))
    result = run(["validate", "--pack", str(folder)], stdin=b"")
    assert result.returncode == 2 and b"pack.json" in result.stderr and b"Traceback" not in result.stderr


def download(at: datetime, size: int) -> dict[str, Any]:
    return {"timestamp": at.replace(tzinfo=None).isoformat(timespec="microseconds"),
            "coordinates": {"latitude": -33.45, "longitude": -70.66}, "file_size": size,
            "download_speed": 1.25}


def test_the_download_monitor_validates_and_counts_with_no_code() -> None:
    rng = random.Random(4)
    sent = [download(T0 + timedelta(microseconds=rng.randrange(60_000_000)), rng.randrange(1, 10**9))
            for _ in range(400)]
    resent = [dict(e) for e in rng.sample(sent, 40)]                        # exact re-sends
    broken = [{**sent[0], "file_size": -1}, {**sent[1], "timestamp": "2026-12-02 10:00:00"}]
    stream = sent + resent + broken
    rng.shuffle(stream)
    stream.sort(key=lambda e: e["timestamp"])
    valid = run(["validate", "--pack", DOWNLOADS, "--dead-letter", "/dev/null", "-q"], stdin=lines(stream))
    assert valid.returncode == 0
    assert len(records(valid.stdout)) == len(stream) - 2
    out = run(["aggregate", "--pack", DOWNLOADS, "--window", "10", "-q"], stdin=valid.stdout)
    assert out.returncode == 0, out.stderr
    want: Counter[str] = Counter()
    for e in {json.dumps(e, sort_keys=True) for e in sent}:     # naive times are UTC here
        at = datetime.fromisoformat(json.loads(e)["timestamp"]).replace(tzinfo=timezone.utc)
        start = at - timedelta(seconds=at.second % 10, microseconds=at.microsecond)
        want[start.strftime("%Y-%m-%dT%H:%M:%SZ")] += 1
    got = windows_of(out.stdout)
    assert {start: w["total"] for start, w in got.items()} == dict(want)
    assert all(set(w["by_region"]) == {"all"} and set(w["by_source"]) == {"download"} for w in got.values())
    assert sum(w["duplicates"] for w in got.values()) == 40
    assert all(i.startswith("sha256:") for w in got.values() for i in w["event_ids"])


def test_nested_pointers_and_epoch_milliseconds(tmp_path: Path) -> None:
    folder = str(write_pack(tmp_path / "sensors", SENSORS))
    rng = random.Random(7)
    t0 = 1_795_000_000_000
    events: list[dict[str, Any]] = []
    for n in range(300):
        kind = rng.choice(["temp", "door"])
        body = {"celsius": rng.uniform(-5, 30)} if kind == "temp" else {"open": rng.random() < 0.5}
        events.append({"meta": {"id": f"s-{n}", "site": rng.choice(["north", "south"])},
                       "ts": t0 + rng.randrange(30_000), "kind": kind, "body": body})
    again = [{**e, "body": e["body"]} for e in rng.sample(events, 25)]      # the same ids again
    stream = sorted(events + again, key=lambda e: e["ts"])
    valid = run(["validate", "--pack", folder, "-q"], stdin=lines(stream))
    assert len(records(valid.stdout)) == len(stream)                        # `kind` is not a derived record
    out = run(["aggregate", "--pack", folder, "--window", "5", "-q"], stdin=valid.stdout)
    want: dict[int, Counter[tuple[str, str]]] = {}
    for e in events:
        index = e["ts"] // 5000
        want.setdefault(index, Counter())[(e["meta"]["site"], e["kind"])] += 1
    got = windows_of(out.stdout)
    assert len(got) == len(want)
    for index, counts in want.items():
        start = datetime.fromtimestamp(index * 5, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        cells = {(r, s): n for r, by in got[start]["by_region_source"].items() for s, n in by.items()}
        assert cells == dict(counts)
    assert sum(w["duplicates"] for w in got.values()) == 25


def test_audit_keeps_the_ids_and_times_the_roles_give(tmp_path: Path) -> None:
    folder = str(write_pack(tmp_path / "sensors", SENSORS))
    events = [{"meta": {"id": f"s-{n}", "site": "north"}, "ts": 1_795_000_000_000 + n * 1000,
               "kind": "temp", "body": {"celsius": n}} for n in range(20)]
    db = tmp_path / "audit.db"
    result = run(["audit", "--pack", folder, "--db", str(db), "-q"], stdin=lines(events))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT event_id, ts_us FROM events_in ORDER BY ts_us").fetchall()
    assert rows == [(f"s-{n}", (1_795_000_000_000 + n * 1000) * 1000) for n in range(20)]
    downloads = [download(T0 + timedelta(seconds=n), n) for n in range(5)]
    db2 = tmp_path / "downloads.db"
    assert run(["audit", "--pack", DOWNLOADS, "--db", str(db2), "-q"], stdin=lines(downloads)).returncode == 0
    with sqlite3.connect(db2) as conn:
        ids = [r[0] for r in conn.execute("SELECT event_id FROM events_in ORDER BY ts_us")]
    assert ids == [content_id(e) for e in downloads]


def test_gen_writes_each_pack_in_its_own_layout(tmp_path: Path) -> None:
    import jsonschema

    sensors = str(write_pack(tmp_path / "sensors", SENSORS))
    made = run(["gen", "--pack", DOWNLOADS, "--count", "300", "--fast", "--seed", "5", "-q"]).stdout
    schema = json.loads((Path(DOWNLOADS) / "payloads" / "download.json").read_text())
    for event in records(made):
        jsonschema.validate(event, schema)                         # a foreign validator's verdict
        assert "+" not in event["timestamp"] and not event["timestamp"].endswith("Z")
    made = run(["gen", "--pack", sensors, "--count", "3000", "--fast", "--seed", "5", "--duplicates",
                "0.05", "-q"]).stdout
    events = records(made)
    assert all(type(e["ts"]) is int and e["kind"] in ("temp", "door") for e in events)
    out = run(["aggregate", "--pack", sensors, "--window", "1", "-q"],
              stdin=run(["validate", "--pack", sensors, "-q"], stdin=made).stdout).stdout
    first: dict[str, dict[str, Any]] = {}
    for e in events:
        first.setdefault(e["meta"]["id"], e)
    want = Counter(e["ts"] // 1000 for e in first.values())
    got = {w["window_start"]: w["total"] for w in windows_of(out).values()}
    assert got == {datetime.fromtimestamp(i, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"): n
                   for i, n in want.items()}
    assert len(events) - len(first) > 100                           # duplicates by /meta/id


@pytest.mark.parametrize("pack", ["downloads", "sensors"])
def test_every_invalid_line_gen_writes_is_a_dead_letter(tmp_path: Path, pack: str) -> None:
    folder = DOWNLOADS if pack == "downloads" else str(write_pack(tmp_path / "sensors", SENSORS))
    made = run(["gen", "--pack", folder, "--count", "4000", "--fast", "--seed", "8", "--invalid", "0.1"])
    said = re.search(rb"(\d+) invalid", made.stderr)
    assert said is not None and int(said[1]) > 300
    judged = run(["validate", "--pack", folder, "--dead-letter", str(tmp_path / "dead.ndjson"),
                  "--dead-letter-body", "record", "-q"], stdin=made.stdout)     # downloads' own is raw
    assert len(records((tmp_path / "dead.ndjson").read_bytes())) == int(said[1])
    assert len(records(judged.stdout)) == 4000 - int(said[1])


def test_replay_verify_reads_region_and_source_where_the_pack_says(tmp_path: Path) -> None:
    folder = str(write_pack(tmp_path / "sensors", SENSORS))
    made = run(["gen", "--pack", folder, "--count", "3000", "--fast", "--seed", "6", "--duplicates",
                "0.05", "-q"]).stdout
    counted = run(["aggregate", "--pack", folder, "--window", "1", "--forward", "-q"],
                  stdin=run(["validate", "--pack", folder, "-q"], stdin=made).stdout).stdout
    db = tmp_path / "audit.db"
    assert run(["audit", "--pack", folder, "--db", str(db), "-q"], stdin=counted).returncode == 0
    checked = run(["replay", "--db", str(db), "--verify", "--pack", folder])
    assert checked.returncode == 0 and b"0 differences" in checked.stderr, checked.stderr
    # without --pack it is read by the roles audit recorded in it
    recorded = run(["replay", "--db", str(db), "--verify"])
    assert recorded.returncode == 0 and b"read by the roles audit recorded" in recorded.stderr
    # read as evtool's own layout (a database audited before roles were recorded), the same
    # store holds no region or source where the metrics say
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE evtool_roles")
    assert run(["replay", "--db", str(db), "--verify"]).returncode != 0


@pytest.mark.parametrize("pack", ["downloads", "sensors", "cloudevents"])
def test_gen_truth_for_any_layout_is_what_aggregate_counts(tmp_path: Path, pack: str) -> None:
    folder = {"downloads": DOWNLOADS, "cloudevents": "cloudevents"}.get(pack) or \
        str(write_pack(tmp_path / "sensors", SENSORS))
    truth = tmp_path / "truth.ndjson"
    made = run(["gen", "--pack", folder, "--count", "3000", "--fast", "--seed", "9", "--duplicates", "0.05",
                "--out-of-order", "0.1", "--max-delay", "1", "--truth", str(truth), "--lateness", "1",
                "-q"]).stdout
    counted = run(["aggregate", "--pack", folder, "--lateness", "1", "-q"],
                  stdin=run(["validate", "--pack", folder, "-q"], stdin=made).stdout).stdout
    want = [(w["window_start"], w["by_region_source"]) for w in records(truth.read_bytes())]
    got = [(w["window_start"], w["by_region_source"]) for w in records(counted) if w.get("kind") == "window"]
    assert got == want and len(want) > 3


def test_watch_tells_events_from_derived_records_by_the_packs_roles(tmp_path: Path) -> None:
    folder = str(write_pack(tmp_path / "sensors", SENSORS))          # its events have a `kind`
    made = run(["gen", "--pack", folder, "--count", "500", "--fast", "--seed", "2", "-q"]).stdout
    forwarded = run(["aggregate", "--pack", folder, "--forward", "-q"], stdin=made).stdout
    shown = json.loads(run(["watch", "--pack", folder, "--once", "--json"], stdin=forwarded).stdout)
    assert shown["events"] == 500 and shown["rejected"] == 0
    assert shown["totals"]["total"] == 500 and set(shown["totals"]["by_source"]) == {"temp", "door"}


def test_on_the_broker_events_route_by_the_packs_source_with_their_ids() -> None:
    from evtool.core.roles import roles_from
    from evtool.transports.amqp.ends import record_route

    roles = roles_from(SENSORS["pack.json"], ["door", "temp"], "")
    event = {"meta": {"id": "s-1", "site": "north"}, "ts": 1, "kind": "temp", "body": {}}
    assert record_route(json.dumps(event).encode(), True, roles)[:3] == ("temp", "s-1", {"region": "north"})
    window = {"kind": "window", "window_start": "x"}
    routes = load_pack("evtool").wire.routes
    assert record_route(json.dumps(window).encode(), False, roles, routes)[0] == "analytics.window"


def test_a_foreign_layout_runs_through_the_broker_as_over_pipes(tmp_path: Path, vhost: str) -> None:
    folder = str(write_pack(tmp_path / "sensors", SENSORS))
    gen = ["gen", "--pack", folder, "--count", "4000", "--seed", "12", "--duplicates", "0.05",
           "--start", "2026-12-02T10:00:00Z", "--fast", "-q"]
    over_pipes = run(["aggregate", "--pack", folder, "-q"],
                     stdin=run(["validate", "--pack", folder, "-q"], stdin=run(gen).stdout).stdout).stdout
    want = sorted((m["metric_id"], m["total"]) for m in records(over_pipes) if m.get("kind") == "metric")
    env = {**os.environ, "EVTOOL_AMQP_URL": vhost, "EVTOOL_PACK": folder}
    db = tmp_path / "audit.db"
    stages = [subprocess.Popen(evtool_cmd(*argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
              for argv in (["validate", "-i", "amqp", "-o", "amqp"],
                           ["aggregate", "-i", "amqp", "-o", "amqp", "--idle-flush", "3"],
                           ["audit", "-i", "amqp", "--db", str(db)])]
    try:
        consuming(vhost, {"validator_queue": 1, "aggregator_queue": 1, "audit_queue": 1})
        assert run([*gen[:-1], "-o", "amqp", "-q"], env=env).returncode == 0
        got: list[tuple[str, int]] = []
        deadline = time.monotonic() + 120
        while got != want and time.monotonic() < deadline:
            time.sleep(0.5)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    got = sorted(conn.execute("SELECT metric_id, total FROM metrics_out").fetchall())
        assert got == want
    finally:
        for stage in stages:
            stage.terminate()
            stage.wait(timeout=60)


def test_the_download_monitors_rejects_go_to_its_queue_as_they_came(tmp_path: Path, vhost: str) -> None:
    import pika

    gen = ["gen", "--pack", DOWNLOADS, "--count", "2000", "--seed", "21", "--invalid", "0.05",
           "--start", "2026-12-02T10:00:00Z", "--fast", "-q"]
    made = run(gen).stdout
    judged = run(["validate", "--pack", DOWNLOADS, "--dead-letter", str(tmp_path / "rejects"),
                  "--dead-letter-body", "raw", "-q"], stdin=made)
    rejected = (tmp_path / "rejects").read_bytes().splitlines()
    assert len(rejected) > 50 and set(rejected) <= set(made.splitlines())      # byte for byte
    assert len(records(judged.stdout)) + len(rejected) == 2000
    queue = f"{vhost}?exchange=&routing_key={{0}}&queue={{0}}"
    env = {**os.environ, "EVTOOL_PACK": DOWNLOADS}
    validate = subprocess.Popen(evtool_cmd("validate", "-i", f"{vhost}?queue=arrivals", "-o",
                                           queue.format("accepted"), "--dead-letter", queue.format("rejects"),
                                           "--dead-letter-body", "raw"),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        consuming(vhost, {"arrivals": 1})
        assert run([*gen, "-o", queue.format("arrivals")]).returncode == 0     # the default exchange
        conn = pika.BlockingConnection(pika.URLParameters(vhost))
        ch = conn.channel()
        got: list[tuple[bytes, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while len(got) < len(rejected) and time.monotonic() < deadline:
            method, props, body = ch.basic_get("rejects", auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            got.append((body, props.headers))
        conn.close()
    finally:
        validate.terminate()
        validate.wait(timeout=60)
    assert sorted(body for body, _ in got) == sorted(rejected)
    assert all(h["x-evtool-reason"] in ("schema", "json", "encoding") and h["x-evtool-stage"] == "validate"
               and h["x-evtool-error"] for _, h in got)
