"""The built-in cloudevents pack, judged by the CNCF CloudEvents SDK: events the SDK makes pass
byte for byte, broken ones are dead letters, what gen makes the SDK reads."""

from __future__ import annotations

import json
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
