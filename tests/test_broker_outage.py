"""After a broker outage every stage reconnects on its own schedule: what that does to the answer."""

from __future__ import annotations

import os
import time

import pika
import pytest

from tests.conftest import consuming, gen_lines, rabbitmqctl, records
from tests.stages import Stage, Timeline, evidence
from tests.test_broker import backlog, drain

pytestmark = pytest.mark.broker


@pytest.mark.exclusive
def test_an_input_restored_before_the_stage_feeding_it_is_not_quiet(vhost, tmp_path) -> None:
    """aggregate may reconnect seconds before validate does (each waits out its own pause between
    attempts, up to 5 s): an `--idle-flush` shorter than that gap must not close the window the
    events still to come belong to. Here the second half of a window's events is published 3 s
    after aggregate is back, with --idle-flush 1: one window of every event, none late, and the
    window still comes out once the input stays quiet."""
    lines = gen_lines(3000, 12, "--rate", "100").splitlines()       # 30 s of one 60 s window
    first, second = lines[:1500], lines[1500:]
    dead, step = tmp_path / "aggregate-dead.ndjson", Timeline(tmp_path)
    conn, ch, _ = backlog(vhost, first, "processing_exchange", "aggregator_queue", "analytics_exchange")
    aggregate = Stage(tmp_path, "aggregate", "aggregate", "-i", "amqp", "-o", "amqp", "--window", "60",
                      "--idle-flush", "1", "--no-alerts", "--dead-letter", str(dead),
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
    time.sleep(3)
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
