"""Sixty-odd bad inputs and options through every stage, over pipes, files, the broker and both
stores: never a traceback, the documented exit code, and every record accounted for."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import orjson
import pika
import pytest

from evtool.core.checks import predicate
from evtool.core.generator import GenConfig, Generator
from evtool.core.invalid import mutations_for
from evtool.schemas import load_pack
from tests.conftest import PG, evtool_cmd, gen_lines, run

GOOD = orjson.loads(gen_lines(1, 3))
T0_US = 1_795_000_000 * 1_000_000


def _mutated() -> list[bytes]:
    """One line per rule of the evtool pack, broken (the same catalogue gen --invalid uses)."""
    pack = load_pack()
    gen = Generator(GenConfig(start_us=T0_US, pack=pack, seed=1))
    rng, lines = random.Random(2), []
    for mutation in mutations_for(pack, lambda s: predicate(s, "if")):
        line = None
        while line is None:
            line = mutation.apply(rng, gen.event(T0_US, mutation.source))
        lines.append(line)
    return lines


HANDMADE = [
    b'{"event_id": NaN}', b"[" * 5000 + b"]" * 5000, b'{"a":' * 300 + b"1" + b"}" * 300,
    b"\xef\xbb\xbf" + orjson.dumps(GOOD), b'"\\ud800"', b"99999999999999999999999",
    orjson.dumps(GOOD).replace(b'"severity":', b'"severity":1000000000000000000000000000000,"x":'),
    b'{"kind": "window"}', b'{"kind": "metric", "kind": "window"}', b'{"kind": 5}',
    b'{"kind": null, "event_id": "x"}', b'{"kind": "deadletter", "raw": 1}',
    orjson.dumps({**GOOD, "timestamp": "2026-11-26T23:59:60Z"}),
    orjson.dumps({**GOOD, "timestamp": "9999-12-31T23:59:59Z"}),
    orjson.dumps({**GOOD, "timestamp": "0001-01-01T00:00:00+14:00"}),
    orjson.dumps({**GOOD, "timestamp": "2026-02-30T00:00:00Z"}),
    orjson.dumps({**GOOD, "region": "\u0000maule"}), orjson.dumps({**GOOD, "event_id": "a" * 5000}),
    orjson.dumps({**GOOD, "source": "s" * 300}), orjson.dumps({"kind": "k" * 300}),
    orjson.dumps(GOOD).replace(b'"region"', b'"region":"aysen","region"'),
    json.dumps(GOOD, indent=2).encode().replace(b"\n", b" "), b"\t  \t", b"{}", b"[]", b"0",
    b'{"event_id": "6f1c0000-0000-4000-8000-000000000001"}', b"\x00", b"\xff\xfe\xfd",
    b'{"kind": "alert", "alert_id": "a", "count": [1]}',
    b'{"kind": "metric", "metric_id": "m", "date": ["x"]}',
    b'{"kind": "window", "duplicates": "x"}',
]


def corpus() -> list[bytes]:
    lines = _mutated() + HANDMADE
    assert len(set(lines)) >= 60
    return lines


def tally(stderr: bytes) -> dict[str, int]:
    """in, out, dead letters and duplicates from a stage's summary line."""
    words = stderr.decode().strip().splitlines()[-1].split(": ", 1)[1].split(", ")
    found = {}
    for word in words:
        number, _, what = word.partition(" ")
        if number.replace(",", "").isdigit():
            found[what.split(" (")[0]] = int(number.replace(",", ""))
    return found


def no_traceback(result) -> None:
    assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr, result.stderr


def test_every_stage_on_pipes_and_files_accounts_for_every_record(tmp) -> None:
    data = b"\n".join(corpus()) + b"\n"
    blank = sum(1 for line in data.splitlines() if not line.strip())
    (tmp / "in.ndjson").write_bytes(data)
    for command in (["validate"], ["aggregate", "--forward", "--no-alerts"],
                    ["audit", "--db", str(tmp / "a.db")],
                    ["validate", "-i", str(tmp / "in.ndjson"), "-o", str(tmp / "out.ndjson")]):
        result = run(command, stdin=data, timeout=120)
        no_traceback(result)
        assert result.returncode == 0, (command, result.stderr)
        t = tally(result.stderr)
        derived = 0
        if command[0] == "aggregate":
            derived = sum(b'"kind":"window"' in x or b'"kind":"metric"' in x
                          for x in result.stdout.splitlines())
        assert t["in"] + blank == len(data.splitlines()) or t["in"] == len(data.splitlines()) - blank
        assert t["in"] == t["out"] - derived + t["dead letters"] + t["duplicates"], (command, t)
    watched = run(["watch", "--once", "--json"], stdin=data)
    no_traceback(watched)
    seen = orjson.loads(watched.stdout)["records"]
    assert watched.returncode == 0 and seen == len(data.splitlines()) - blank


def test_audit_into_postgresql_accounts_for_every_record(pg_database) -> None:
    data = b"\n".join(corpus()) + b"\n"
    result = run(["audit", "--db", f"{PG}/{pg_database}"], stdin=data, timeout=120)
    no_traceback(result)
    t = tally(result.stderr)
    assert result.returncode == 0 and t["in"] == t["out"] + t["dead letters"], t


BAD_OPTIONS = [
    ["aggregate", "--window", "nan"], ["aggregate", "--window", "inf"], ["aggregate", "--window", "0"],
    ["aggregate", "--window", "1e300"], ["aggregate", "--lateness", "-1"],
    ["aggregate", "--idle-flush", "nan"], ["aggregate", "--dedupe-horizon", "inf"],
    ["aggregate", "--alert-threshold", "1e300"], ["aggregate", "--max-ahead", "nan"],
    ["gen", "--rate", "inf"], ["gen", "--rate", "0"], ["gen", "--max-delay", "nan"],
    ["gen", "--invalid", "1.5"], ["gen", "--start", "yesterday"], ["gen", "--pack", "no-such-pack"],
    ["audit", "--batch-seconds", "nan"],
    ["replay", "--speed", "inf"], ["replay", "--since", "x"],
    ["watch", "--serve", "127.0.0.1:99999"], ["validate", "--connect-timeout", "nan"],
    ["validate", "--regions", ","], ["watch", "--json"], ["watch", "-o", "amqp"],
    # names AMQP cannot carry: one past 255 bytes had the stage retry a "lost connection" for
    # ever; an escape that is no UTF-8 became U+FFFD, another name than the one given
    ["gen", "-o", f"amqp://127.0.0.1:1/v?exchange=&queue={'q' * 256}"],
    ["validate", "-i", "amqp://127.0.0.1:1/v?exchange=e&binding=" + "%C3%A9" * 128],
    ["gen", "-o", "amqp://127.0.0.1:1/v?exchange=e&routing_key=%FF%FE"],
    ["learn", "--out", "x", "-i", "amqp://127.0.0.1:1/v?queue=%C3%28"],
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=lambda a: " ".join(a)[:90])
def test_bad_options_are_usage_errors(argv) -> None:
    result = run(argv, stdin=b"", timeout=30)
    no_traceback(result)
    assert result.returncode == 2, (argv, result.stderr)


@pytest.mark.broker
def test_validate_on_the_broker_accounts_for_every_message(vhost) -> None:
    lines = [x for x in corpus() if x.strip()]
    conn = pika.BlockingConnection(pika.URLParameters(vhost))
    ch = conn.channel()
    ch.queue_declare("hostile_in", durable=True)
    for line in lines:
        ch.basic_publish("", "hostile_in", line)
    conn.close()
    proc = subprocess.Popen(evtool_cmd("validate", "-i", f"{vhost}?queue=hostile_in",
                                       "-o", f"{vhost}?exchange=&routing_key=ok_q&queue=ok_q",
                                       "--dead-letter", f"{vhost}?exchange=&routing_key=dl_q&queue=dl_q"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    conn = pika.BlockingConnection(pika.URLParameters(vhost))
    ch = conn.channel()
    deadline = time.monotonic() + 60
    while True:                       # until every message is out, one way or the other
        try:
            routed = sum(ch.queue_declare(q, passive=True).method.message_count for q in ("ok_q", "dl_q"))
        except pika.exceptions.ChannelClosedByBroker:       # the stage has not declared them yet
            ch, routed = conn.channel(), 0
        if routed >= len(lines):
            break
        assert time.monotonic() < deadline and proc.poll() is None, routed
        time.sleep(0.05)
    conn.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    err = proc.stderr.read()
    assert b"Traceback" not in err
    conn = pika.BlockingConnection(pika.URLParameters(vhost))
    ch = conn.channel()
    ok = ch.queue_declare("ok_q", passive=True).method.message_count
    dead = ch.queue_declare("dl_q", passive=True).method.message_count
    left = ch.queue_declare("hostile_in", passive=True).method.message_count
    conn.close()
    assert left == 0 and ok + dead == len(lines), (ok, dead, len(lines), err[-400:])

