"""Hostile records and broker states on the real RabbitMQ: a stage never hangs, loops or lies."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from urllib.parse import quote

import orjson
import pika
import pytest

from tests.conftest import START, drained, evtool_cmd, gen_lines, run, tapped

pytestmark = pytest.mark.broker


def channel(url: str):
    conn = pika.BlockingConnection(pika.URLParameters(url))
    return conn, conn.channel()


def test_a_record_whose_routing_key_amqp_cannot_hold_is_a_dead_letter(vhost) -> None:
    long_kind = orjson.dumps({"kind": "k" * 300, "n": 1})
    good = gen_lines(20, 3)
    out = f"{vhost}?exchange=out_x&queue=out_q"
    dead = f"{vhost}?exchange=&routing_key=dl_q&queue=dl_q"
    result = run(["validate", "-o", out, "--dead-letter", dead, "--connect-timeout", "10"],
                 stdin=long_kind + b"\n" + good, timeout=60)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert b"21 in, 20 out, 1 dead letters (schema 1)" in result.stderr
    conn, ch = channel(vhost)
    try:
        assert ch.queue_declare("out_q", passive=True).method.message_count == 20
        _, _, body = ch.basic_get("dl_q", auto_ack=True)
        letter = orjson.loads(body)
        assert letter["reason"] == "schema" and "routing key" in letter["error"]
    finally:
        conn.close()


def full_queue(url: str, length: int) -> None:
    """Exchange full_x into a queue that refuses publishes (basic.nack) past `length` messages."""
    conn, ch = channel(url)
    ch.exchange_declare("full_x", "topic", durable=True)
    ch.queue_declare("full_q", durable=True, arguments={"x-max-length": length,
                                                        "x-overflow": "reject-publish"})
    ch.queue_bind("full_q", "full_x", "#")
    conn.close()


def test_a_queue_that_refuses_publishes_is_retried_said_and_given_up(vhost) -> None:
    full_queue(vhost, 5)
    started = time.monotonic()
    result = run(["gen", "--count", "50", "--seed", "1", "--start", START, "--fast",
                  "-o", f"{vhost}?exchange=full_x", "--connect-timeout", "4"], timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"basic.nack" in result.stderr and b"kept refusing" in result.stderr
    assert took < 20
    assert b" 0 out" in result.stderr.splitlines()[-1]       # nothing was confirmed


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_stage_waiting_for_refused_confirms(vhost, sig, status) -> None:
    full_queue(vhost, 1)
    proc = subprocess.Popen(evtool_cmd("gen", "--count", "20", "--fast", "-o",
                                       f"{vhost}?exchange=full_x", "--connect-timeout", "60"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline()          # once it says the broker refused, it waits to resend
    assert b"basic.nack" in first, first
    proc.send_signal(sig)
    assert proc.wait(timeout=15) == status
    assert b"Traceback" not in proc.stderr.read()


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_stage_that_is_still_connecting(sig, status) -> None:
    proc = subprocess.Popen(evtool_cmd("validate", "-i", "amqp", "--amqp-url",
                                       "amqp://guest:guest@127.0.0.1:1/%2F", "--connect-timeout", "60"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline()          # its first retry: connecting, with its handlers set
    assert b"retrying" in first, first
    proc.send_signal(sig)
    assert proc.wait(timeout=15) == status
    err = first + proc.stderr.read()
    assert b"Traceback" not in err and b"Aborted" not in err


def test_a_pretty_printed_message_stays_one_record(vhost) -> None:
    event = orjson.loads(gen_lines(1, 4))
    conn, ch = channel(vhost)
    ch.queue_declare("pretty_q", durable=True)
    ch.basic_publish("", "pretty_q", orjson.dumps(event, option=orjson.OPT_INDENT_2))
    ch.basic_publish("", "pretty_q", b'{"kind": "heartbeat",\n "n": 1}')
    ch.basic_publish("", "pretty_q", b"not\njson")
    conn.close()
    proc = subprocess.Popen(evtool_cmd("watch", "--once", "--json", "-q", "-i", f"{vhost}?queue=pretty_q"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    drained(vhost, "pretty_q")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    snap = orjson.loads(out)
    assert snap["records"] == 3 and snap["events"] == 1 and snap["unreadable"] == 1
    proc = subprocess.Popen(evtool_cmd("validate", "-q", "-i", f"{vhost}?queue=pretty_q"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conn, ch = channel(vhost)
    ch.basic_publish("", "pretty_q", orjson.dumps(event, option=orjson.OPT_INDENT_2))
    ch.basic_publish("", "pretty_q", b"not\njson")
    conn.close()
    drained(vhost, "pretty_q")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    lines = out.splitlines()
    assert len(lines) == 2 and orjson.loads(lines[0]) == event
    assert orjson.loads(lines[1])["reason"] == "json"


def test_an_unroutable_publish_is_not_counted_out(vhost) -> None:
    result = run(["gen", "--count", "200", "--fast", "-o", f"{vhost}?exchange=nowhere_x",
                  "--connect-timeout", "5"], timeout=60)
    assert result.returncode == 1 and b"unroutable" in result.stderr
    assert b" 0 out" in result.stderr.splitlines()[-1], result.stderr


def test_a_wrong_password_never_shows(vhost) -> None:
    url = "AMQP://" + vhost.split("://", 1)[1].replace("guest:guest", "guest:" + quote("s3cr@t pw", safe=""))
    result = run(["gen", "--count", "1", "-o", "amqp", "--amqp-url", url, "--connect-timeout", "3"],
                 timeout=30)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"s3cr" not in result.stderr and b"s3cr%40t" not in result.stderr


def test_watch_sees_dead_letters_and_leaves_them_in_their_queue(vhost) -> None:
    watch = subprocess.Popen(evtool_cmd("watch", "-i", "amqp", "--amqp-url", vhost, "--once", "--json", "-q"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tapped(vhost, "deadletter_exchange")
    validate = subprocess.Popen(evtool_cmd("validate", "-i", "amqp", "-o", "amqp", "--amqp-url", vhost, "-q"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    made = run(["gen", "--count", "2000", "--invalid", "0.05", "--seed", "12", "--start", START, "--fast",
                "-o", "amqp", "--amqp-url", vhost], timeout=60)
    drained(vhost, "validator_queue")                  # validated, and the letters taken by watch
    validate.send_signal(signal.SIGTERM)
    assert validate.wait(timeout=30) == 143
    watch.send_signal(signal.SIGTERM)
    out, err = watch.communicate(timeout=30)
    assert b"Traceback" not in err
    invalid = int(re.search(rb"(\d+) invalid", made.stderr).group(1))
    snap = orjson.loads(out)
    assert snap["deadletters"]["total"] == invalid > 50
    assert set(snap["deadletters"]["by_reason"]) <= {"json", "encoding", "schema"}
    conn, ch = channel(vhost)
    try:
        assert ch.queue_declare("deadletter.validation", passive=True).method.message_count == invalid
        held: dict[str, int] = {}
        while (got := ch.basic_get("deadletter.validation", auto_ack=False))[0] is not None:
            reason = orjson.loads(got[2])["reason"]
            held[reason] = held.get(reason, 0) + 1
        assert held == snap["deadletters"]["by_reason"]             # every one, by its reason
    finally:
        conn.close()                                               # unacked: all back in the queue
    conn, ch = channel(vhost)
    try:
        assert ch.queue_declare("deadletter.validation", passive=True).method.message_count == invalid
    finally:
        conn.close()


def test_ctrl_c_while_replay_connects_is_130(tmp) -> None:
    db = tmp / "r.db"
    run(["audit", "--db", str(db), "-q"], stdin=gen_lines(5, 1))
    proc = subprocess.Popen(evtool_cmd("replay", "--db", str(db), "-o", "amqp", "--amqp-url",
                                       "amqp://guest:guest@127.0.0.1:1/%2F", "--connect-timeout", "60"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline()          # its first retry: connecting, with its handlers set
    assert b"retrying" in first, first
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 130
    err = first + proc.stderr.read()
    assert b"Aborted" not in err and b"Traceback" not in err


def test_an_over_long_message_id_is_hashed_not_fatal(vhost) -> None:
    metric = {"kind": "metric", "metric_id": "m" * 400, "date": "2026-11-26", "region": "r",
              "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
              "window_seconds": 5, "counts": {"s": 1}, "total": 1, "input_event_ids": ["e"]}
    result = run(["validate", "-o", f"{vhost}?exchange=&routing_key=long_q&queue=long_q",
                  "--connect-timeout", "10"], stdin=orjson.dumps(metric) + b"\nnot json\n", timeout=60)
    assert result.returncode == 0 and b"2 in, 1 out, 1 dead letters" in result.stderr, result.stderr
    conn, ch = channel(vhost)
    try:
        _, props, body = ch.basic_get("long_q", auto_ack=True)
        assert orjson.loads(body) == metric and len(props.message_id) == 40
        # the reject went to the dead-letter queue of the output URL's own vhost, not to /
        assert ch.queue_declare("deadletter.validation", passive=True).method.message_count == 1
    finally:
        conn.close()


def test_a_consumer_the_broker_cancels_consumes_again(vhost, tmp) -> None:
    """An admin deletes the queue under a running validate: it declares it again and goes on."""
    conn, ch = channel(vhost)
    ch.exchange_declare("processing_exchange", "topic", durable=True)
    ch.queue_declare("forwarded", durable=True)
    ch.queue_bind("forwarded", "processing_exchange", "#")

    def consumers() -> int:
        nonlocal conn, ch
        if ch.is_closed:
            conn, ch = channel(vhost)
        try:
            return ch.queue_declare("validator_queue", passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return -1                                     # not declared (again) yet

    def until(done, what: str) -> None:
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, (what, (tmp / "validate.log").read_text())
            time.sleep(0.05)

    with open(tmp / "validate.log", "wb") as err:
        proc = subprocess.Popen(evtool_cmd("validate", "-i", "amqp", "-o", "amqp", "--amqp-url", vhost),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            until(lambda: consumers() >= 1, "consuming")
            ch.queue_delete("validator_queue")
            until(lambda: consumers() >= 1, "consuming again")
            for line in gen_lines(100, 4).splitlines():
                ch.basic_publish("events_exchange", "x", line)
            until(lambda: ch.queue_declare("forwarded", passive=True).method.message_count == 100,
                  "all forwarded")
        finally:
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=30)
            conn.close()
    assert status == 143
    assert b"cancelled the consumer" in (tmp / "validate.log").read_bytes()


def test_a_stage_consumes_only_once_its_outputs_are_declared(vhost, tmp) -> None:
    """A consumer on a stage's input is what scripts wait for before they publish or read its
    outputs: at that moment the outputs' queues exist."""
    env = {**os.environ, "EVTOOL_AMQP_URL": vhost}
    for _ in range(4):
        with open(tmp / "validate.log", "wb") as log:
            proc = subprocess.Popen(evtool_cmd("validate", "-i", "amqp", "-o", "amqp", "-q"), env=env,
                                    stdout=subprocess.DEVNULL, stderr=log)
        conn, ch = channel(vhost)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if ch.queue_declare("validator_queue", passive=True).method.consumer_count:
                        break
                except pika.exceptions.ChannelClosedByBroker:
                    ch = conn.channel()
                assert proc.poll() is None, (tmp / "validate.log").read_text()
                assert time.monotonic() < deadline, "no consumer on validator_queue in 60 s"
                time.sleep(0.005)
            for output in ("aggregator_queue", "deadletter.validation"):
                ch.queue_declare(output, passive=True)      # the broker closes the channel if not
        finally:
            conn.close()
            proc.terminate()
            proc.wait(timeout=60)
        conn, ch = channel(vhost)
        for name in ("aggregator_queue", "deadletter.validation", "validator_queue"):
            ch.queue_delete(name)           # the next start declares its outputs anew
        conn.close()
