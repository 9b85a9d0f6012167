"""The built-in cloudevents pack, judged by the CNCF CloudEvents SDK: events the SDK makes pass
byte for byte, broken ones are dead letters, what gen makes the SDK reads."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cloudevents.v1.conversion import to_json
from cloudevents.v1.http import CloudEvent, from_json

from tests.conftest import records, run

PAYLOADS = {
    "org.evtool.security.incident": {"incident_type": "robbery", "severity": 3, "reported_by": "citizen"},
    "org.evtool.survey.victimization": {"respondent_age": 40, "victimized": True, "perceived_safety": 3,
                                        "reported_to_police": False},
    "org.evtool.migration.case": {"case_type": "visa", "origin_country": "PE", "status": "open",
                                  "applicants": 2},
    "com.example.unknown": {"anything": ["goes", 1]},
}
SOURCES = ["/regions/maule", "/regions/biobio", "urn:sensor:7"]


def sdk_lines() -> list[bytes]:
    """What the SDK writes: each type from each source, one minute apart."""
    made = []
    for n, (kind, data) in enumerate(PAYLOADS.items()):
        for m, source in enumerate(SOURCES):
            attributes = {"type": kind, "source": source, "time": f"2026-12-02T10:0{n}:{10 * m:02d}Z",
                          "id": f"ev-{n}-{m}", "datacontenttype": "application/json"}
            made.append(to_json(CloudEvent(attributes, data)))
    return made


def broken() -> dict[str, dict[str, Any]]:
    good: dict[str, Any] = json.loads(sdk_lines()[0])
    ce = {k: v for k, v in good.items()}
    return {
        "no id": {k: v for k, v in ce.items() if k != "id"},
        "specversion 0.3": {**ce, "specversion": "0.3"},
        "empty type": {**ce, "type": ""},
        "bad time": {**ce, "time": "yesterday"},
        "an upper-case extension name": {**ce, "traceParent": "x"},
        "both data and data_base64": {**ce, "data_base64": "aGk="},
        "a severity of 9": {**ce, "data": {**ce["data"], "severity": 9}},
        "empty source": {**ce, "source": ""},
        "no specversion": {k: v for k, v in ce.items() if k != "specversion"},
    }


def test_events_the_sdk_makes_pass_byte_for_byte_and_are_counted_by_type_and_source() -> None:
    lines = sdk_lines()
    out = run(["validate", "--pack", "cloudevents", "-q"], stdin=b"\n".join(lines) + b"\n")
    assert out.returncode == 0 and out.stdout.splitlines() == lines
    counted = run(["aggregate", "--pack", "cloudevents", "--window", "3600", "-q"], stdin=out.stdout)
    (window,) = [r for r in records(counted.stdout) if r.get("kind") == "window"]
    assert window["by_source"] == dict.fromkeys(PAYLOADS, 3)
    assert window["by_region"] == dict.fromkeys(SOURCES, 4)
    assert sorted(window["event_ids"]) == sorted(json.loads(line)["id"] for line in lines)


@pytest.mark.parametrize(("what", "event"), list(broken().items()), ids=list(broken()))
def test_a_broken_cloudevent_is_a_dead_letter(what: str, event: dict[str, Any], tmp_path) -> None:
    dead = tmp_path / "dead.ndjson"
    out = run(["validate", "--pack", "cloudevents", "--dead-letter", str(dead), "-q"],
              stdin=json.dumps(event).encode() + b"\n")
    assert out.stdout == b"", what
    (letter,) = records(dead.read_bytes())
    assert letter["reason"] == "schema", letter


def test_what_gen_makes_the_sdk_reads_back_with_the_same_attributes_and_data() -> None:
    made = run(["gen", "--pack", "cloudevents", "--count", "300", "--fast", "--seed", "3", "-q"]).stdout
    events = records(made)
    assert {e["type"] for e in events} == {k for k in PAYLOADS if k.startswith("org.evtool.")}
    for line, ours in zip(made.splitlines(), events, strict=True):
        theirs = from_json(line)
        assert theirs["id"] == ours["id"] and theirs["source"] == ours["source"]
        assert theirs["type"] == ours["type"] and theirs.data == ours["data"]
        assert theirs["specversion"] == "1.0"
    judged = run(["validate", "--pack", "cloudevents", "-q"], stdin=made)
    assert judged.stdout.splitlines() == made.splitlines()


def _sdk_event(n: int, kind: str, data: Any) -> Any:
    from datetime import datetime, timezone

    from cloudevents.core.v1.event import CloudEvent as CoreEvent

    region = SOURCES[n % 2]
    at = datetime(2026, 12, 2, 10, n % 60, tzinfo=timezone.utc)
    return CoreEvent({"type": kind, "source": region, "id": f"rmq-{n}", "specversion": "1.0",
                      "time": at, "datacontenttype": "application/json"}, data)


def test_on_the_broker_binary_and_structured_messages_go_on_structured(vhost: str) -> None:
    """The SDK's RabbitMQ binding writes 100 events, half in binary mode (attributes in ce-*
    headers), half structured; validate reads both and writes every one structured, which the
    SDK reads back with the same id and data. Three binary messages with no ce-id are dead."""
    import subprocess

    import pika
    from cloudevents.core.bindings import rabbitmq
    from cloudevents.core.formats.json import JSONFormat

    from tests.conftest import consuming, evtool_cmd

    fmt = JSONFormat()
    kinds = list(PAYLOADS.items())
    events = [_sdk_event(n, *kinds[n % len(kinds)]) for n in range(100)]
    messages = [rabbitmq.to_binary(e, fmt) if n % 2 else rabbitmq.to_structured(e, fmt)
                for n, e in enumerate(events)]
    nameless = []
    for n in range(3):
        message = rabbitmq.to_binary(_sdk_event(200 + n, *kinds[0]), fmt)
        nameless.append(rabbitmq.RabbitMQMessage({k: v for k, v in message.headers.items()
                                                  if k != "ce-id"}, message.content_type, message.body))
    validate = subprocess.Popen(evtool_cmd("validate", "--pack", "cloudevents", "-i", "amqp", "-o", "amqp",
                                           "--amqp-url", vhost), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    try:
        consuming(vhost, {"validator_queue": 1})      # its outputs are declared by then
        conn = pika.BlockingConnection(pika.URLParameters(vhost))
        ch = conn.channel()
        for message in [*messages, *nameless]:
            ch.basic_publish("events_exchange", "cloudevents", message.body, pika.BasicProperties(
                headers=message.headers or None, content_type=message.content_type, delivery_mode=2))
        out: list[tuple[Any, bytes]] = []
        dead: list[bytes] = []
        deadline = time.monotonic() + 120
        while (len(out) < 100 or len(dead) < 3) and time.monotonic() < deadline:
            got = False
            method, props, body = ch.basic_get("aggregator_queue", auto_ack=True)
            if method is not None:
                out.append((props, body))
            letter = ch.basic_get("deadletter.validation", auto_ack=True)
            if letter[0] is not None:
                dead.append(letter[2])
            got = method is not None or letter[0] is not None
            if validate.poll() is not None:
                raise AssertionError(validate.stderr.read() if validate.stderr else b"")
            if not got:
                conn.sleep(0.02)
        conn.close()
    finally:
        validate.terminate()
        validate.wait(timeout=60)
    assert {props.content_type for props, _ in out} == {"application/cloudevents+json"}
    read = [rabbitmq.from_rabbitmq(rabbitmq.RabbitMQMessage(props.headers or {}, props.content_type, body),
                                   fmt) for props, body in out]
    assert sorted((e.get_id(), json.dumps(e.get_data(), sort_keys=True)) for e in read) == sorted(
        (e.get_id(), json.dumps(e.get_data(), sort_keys=True)) for e in events)
    letters = [json.loads(body) for body in dead]
    assert all(r["kind"] == "deadletter" and "id" in r["error"] for r in letters)


def test_a_binary_message_stands_for_its_structured_event_whatever_its_data() -> None:
    from evtool.core.binarymode import structured
    from evtool.schemas import load_pack

    binary = load_pack("cloudevents").wire.binary
    assert binary is not None
    head = {"ce-id": "1", "ce-type": "t", "ce-source": "/s", "ce-specversion": "1.0"}
    amqp10 = {"cloudEvents_id": "2", "cloudEvents:type": "t", "cloudEvents_source": "/s"}
    cases: list[tuple[dict[str, str], str | None, bytes, dict[str, Any]]] = [
        (head, "application/json", b'{"a": 1}', {"data": {"a": 1}, "datacontenttype": "application/json"}),
        (head, "text/plain", "caf\u00e9".encode(), {"data": "caf\u00e9", "datacontenttype": "text/plain"}),
        (head, "application/octet-stream", b"\xff\x00", {"data_base64": "/wA=",
                                                         "datacontenttype": "application/octet-stream"}),
        (head, None, b"", {}),
        (amqp10, "application/json", b"[1]", {"data": [1], "datacontenttype": "application/json"}),
    ]
    for headers, content_type, body, rest in cases:
        attributes = {k.split("-", 1)[-1].split("_", 1)[-1].split(":", 1)[-1].lower(): v
                      for k, v in headers.items()}
        assert json.loads(structured(binary, headers, content_type, body) or b"") == {**attributes, **rest}
    assert structured(binary, {"x-other": "1"}, "application/json", b"{}") is None
    assert structured(binary, head, "application/cloudevents+json", b"{}") is None
