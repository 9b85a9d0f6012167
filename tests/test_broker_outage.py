"""A broker that goes away or holds its publishers: what the stages do, and say, meanwhile."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pika
import pytest

from tests.conftest import consuming, gen_lines, rabbitmqctl, records
from tests.stages import Stage, Timeline, evidence
from tests.test_broker_sigterm import backlog, drain

pytestmark = pytest.mark.broker


@pytest.mark.exclusive
def test_an_input_restored_before_the_stage_feeding_it_is_not_quiet(vhost, tmp_path) -> None:
    """aggregate may reconnect seconds before validate does (each waits out its own pause between
    attempts, up to 5 s): an `--idle-flush` shorter than that gap must not close the window the
    events still to come belong to. Here the second half of a window's events is published 7 s
    after aggregate is back, with --idle-flush 4 (longer than the quiet before the restart, the
    time rabbitmqctl takes to start): one window of every event, none late, and the window still
    comes out once the input stays quiet."""
    lines = gen_lines(3000, 12, "--rate", "100").splitlines()       # 30 s of one 60 s window
    first, second = lines[:1500], lines[1500:]
    dead, step = tmp_path / "aggregate-dead.ndjson", Timeline(tmp_path)
    conn, ch, _ = backlog(vhost, first, "processing_exchange", "aggregator_queue", "analytics_exchange")
    aggregate = Stage(tmp_path, "aggregate", "aggregate", "-i", "amqp", "-o", "amqp", "--window", "60",
                      "--idle-flush", "4", "--no-alerts", "--dead-letter", str(dead),
                      env={**os.environ, "EVTOOL_AMQP_URL": vhost})
    deadline = time.monotonic() + 60
    while ch.queue_declare("aggregator_queue", passive=True).method.message_count:
        assert time.monotonic() < deadline, evidence(tmp_path)
        time.sleep(0.05)
    conn.close()
    for action in ("stop_app", "start_app", "await_startup"):
        step(action)
        rabbitmqctl(action)
    consuming(vhost, {"aggregator_queue": 1})
    step("aggregate consumes again; validate is still waiting out its pause")
    time.sleep(7)
    conn = pika.BlockingConnection(pika.URLParameters(vhost))
    ch = conn.channel()
    for line in second:
        ch.basic_publish("processing_exchange", "x", line, pika.BasicProperties(delivery_mode=2))
    step("the second half is published")
    deadline, got = time.monotonic() + 60, list[dict]()
    while not [r for r in got if r["kind"] == "window"]:
        assert time.monotonic() < deadline, evidence(tmp_path)
        time.sleep(0.2)
        got += drain(ch, "forwarded")
    conn.close()
    assert aggregate.stop() == 143, evidence(tmp_path)
    assert dead.read_bytes() == b"", evidence(tmp_path)
    windows = [r for r in got if r["kind"] == "window"]
    distinct = {r["event_id"] for r in records(b"\n".join(lines))}
    assert [w["total"] for w in windows] == [len(distinct)], evidence(tmp_path)


def memory_watermark() -> list[str]:
    """The broker's memory high watermark, as rabbitmqctl's setter takes it."""
    shown = subprocess.run(["rabbitmqctl", "-q", "eval", "vm_memory_monitor:get_vm_memory_high_watermark()."],
                           capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    absolute = re.fullmatch(r"\{absolute,\s*(\d+)\}", shown)
    return ["absolute", absolute[1]] if absolute else [shown]


def said(log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never said: {log.read_text()}"
        time.sleep(0.1)


@pytest.mark.exclusive
def test_a_resource_alarm_is_said_when_it_blocks_publishing_and_when_it_lifts(vhost, tmp_path) -> None:
    """A broker low on memory holds every publisher: validate says so instead of stalling without
    a word, says when the alarm lifts, and then forwards every event once."""
    conn, ch, lines = backlog(vhost, gen_lines(2000, 5).splitlines())
    watermark = memory_watermark()
    try:
        rabbitmqctl("set_vm_memory_high_watermark", "0.000001")
        validate = Stage(tmp_path, "validate", "validate", "-i", "amqp", "-o", "amqp",
                         env={**os.environ, "EVTOOL_AMQP_URL": vhost})
        said(validate.log, "blocks publishing (low on memory)")
        assert ch.queue_declare("forwarded", passive=True).method.message_count == 0
    finally:
        rabbitmqctl("set_vm_memory_high_watermark", *watermark)
    said(validate.log, "lifted its alarm: publishing again")
    deadline = time.monotonic() + 60
    while ch.queue_declare("forwarded", passive=True).method.message_count < len(lines):
        assert time.monotonic() < deadline, evidence(tmp_path)
        time.sleep(0.1)
    assert validate.stop() == 143, evidence(tmp_path)
    assert sorted(r["event_id"] for r in drain(ch, "forwarded")) == sorted(
        r["event_id"] for r in records(b"\n".join(lines)))
    conn.close()
