"""SIGTERM at any moment on the real RabbitMQ: a stage finishes the batch in hand, acks what it
sent, and a restart neither loses nor repeats anything."""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import orjson
import pika
import pytest

from tests.conftest import gen_lines, records, run
from tests.stages import Stage

pytestmark = pytest.mark.broker


def backlog(vhost: str, lines: list[bytes], into: str = "events_exchange", queue: str = "validator_queue",
            out: str = "processing_exchange") -> tuple[pika.BlockingConnection, Any, list[bytes]]:
    """`lines` waiting in a stage's queue, and a queue `forwarded` that catches its output."""
    conn = pika.BlockingConnection(pika.URLParameters(vhost))
    ch = conn.channel()
    ch.exchange_declare(out, "topic", durable=True)
    ch.queue_declare("forwarded", durable=True)
    ch.queue_bind("forwarded", out, "#")
    ch.exchange_declare(into, "topic", durable=True)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, into, "#")
    for line in lines:
        ch.basic_publish(into, "x", line, pika.BasicProperties(delivery_mode=2))
    return conn, ch, lines


def stop_at_random_moments(ch: Any, stage: Stage, queue: str, times: int) -> None:
    """SIGTERM `stage` `times` times while it drains `queue`, starting it again each time: each
    stop a random moment after the queue's depth first falls below one of `times` random marks,
    so the stops spread over the whole input however fast or busy the machine is."""
    rng = random.Random()

    def depth() -> int:
        return int(ch.queue_declare(queue, passive=True).method.message_count)

    def consumers(want: int) -> None:
        """A signal before the stage has its handlers would end Python itself, not the stage; and
        the broker may count a stopped stage's consumer a moment after it is gone."""
        deadline = time.monotonic() + 60
        while ch.queue_declare(queue, passive=True).method.consumer_count != want:
            assert time.monotonic() < deadline and (want == 0 or stage.proc.poll() is None)
            time.sleep(0.02)

    total = depth()
    marks = sorted((rng.uniform(0.03, 0.97) * total for _ in range(times)), reverse=True)
    consumers(1)
    for mark in marks:
        deadline = time.monotonic() + 120
        while depth() > mark:
            assert time.monotonic() < deadline, f"the stage made no progress past {mark:.0f} in 120 s"
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))
        assert stage.stop() == 143
        consumers(0)
        stage.start()
        consumers(1)


def drain(ch: Any, queue: str) -> list[dict]:
    got: list[dict] = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        got.append(orjson.loads(body))


def test_sigterm_finishes_the_batch_in_hand_so_a_restart_forwards_nothing_twice(vhost, tmp_path) -> None:
    conn, ch, lines = backlog(vhost, gen_lines(20000, 8).splitlines())
    env = {**os.environ, "EVTOOL_AMQP_URL": vhost}
    validate = Stage(tmp_path, "validate", "validate", "-i", "amqp", "-o", "amqp", env=env)
    deadline = time.monotonic() + 60
    while ch.queue_declare("forwarded", passive=True).method.message_count == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert validate.stop() == 143
    summary = (tmp_path / "validate.log").read_text().strip().splitlines()[-1]
    read, out = (int(summary.split(" in, ")[0].split()[-1]), int(summary.split(" in, ")[1].split()[0]))
    left = ch.queue_declare("validator_queue", passive=True).method.message_count
    routed = ch.queue_declare("forwarded", passive=True).method.message_count
    assert read == out == routed, summary              # what it read went out, and was acked
    assert left == len(lines) - read                   # nothing read is left to come again
    validate.start()
    deadline = time.monotonic() + 120
    while ch.queue_declare("forwarded", passive=True).method.message_count < len(lines):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert validate.stop() == 143
    assert ch.queue_declare("forwarded", passive=True).method.message_count == len(lines)
    conn.close()


@pytest.mark.slow
def test_sigterm_at_twenty_random_moments_forwards_every_event_once(vhost, tmp_path) -> None:
    """validate stopped with SIGTERM 20 times mid-stream and started again: each run counts out
    what it read, and the events come out once each, whatever the moments."""
    conn, ch, lines = backlog(vhost, gen_lines(60000, 9).splitlines())
    env = {**os.environ, "EVTOOL_AMQP_URL": vhost}
    validate = Stage(tmp_path, "validate", "validate", "-i", "amqp", "-o", "amqp", env=env)
    stop_at_random_moments(ch, validate, "validator_queue", 20)
    deadline = time.monotonic() + 120
    while ch.queue_declare("forwarded", passive=True).method.message_count < len(lines):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert validate.stop() == 143
    summaries = [line for line in (tmp_path / "validate.log").read_text().splitlines() if " in, " in line]
    for summary in summaries:
        read, out = summary.split(" in, ")[0].split()[-1], summary.split(" in, ")[1].split()[0]
        assert read == out, summary                        # what it read went out, and was acked
    forwarded = [record["event_id"] for record in drain(ch, "forwarded")]
    conn.close()
    assert len(forwarded) == len(lines) == len(set(forwarded))


@pytest.mark.slow
def test_sigterm_at_twenty_random_moments_emits_each_window_once_and_whole(vhost, tmp_path) -> None:
    """aggregate stopped with SIGTERM 20 times: what counted into windows already sent is acked,
    what counted into open ones comes again, so every window and metric is sent once, with the
    counts a run without stops gives."""
    lines = gen_lines(100000, 10).splitlines()
    options = ["--window", "10", "--no-alerts"]      # alerts need the windows before them: a restart forgets
    want = records(run(["aggregate", *options, "-q"], stdin=b"\n".join(lines) + b"\n").stdout)
    conn, ch, _ = backlog(vhost, lines, "processing_exchange", "aggregator_queue", "analytics_exchange")
    env = {**os.environ, "EVTOOL_AMQP_URL": vhost}
    aggregate = Stage(tmp_path, "aggregate", "aggregate", "-i", "amqp", "-o", "amqp", *options,
                      "--idle-flush", "3", env=env)
    stop_at_random_moments(ch, aggregate, "aggregator_queue", 20)
    deadline = time.monotonic() + 120
    while ch.queue_declare("forwarded", passive=True).method.message_count < len(want):
        assert time.monotonic() < deadline, f"{len(want)} records wanted"
        time.sleep(0.1)
    assert aggregate.stop() == 143
    got = drain(ch, "forwarded")
    conn.close()
    assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, want))
