"""Ways to break an event: one per rule of the contract, plus lines that are not events at all."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

Event = dict[str, Any]
Mutation = Callable[[random.Random, Event], bytes]


def _at(path: str, source: str | None, edit: Callable[[Event, str], None], name: str) -> Mutation:
    """A mutation that edits one field (`payload.x` reaches into the payload), after switching
    the event to `source` when given."""

    def mutate(rng: random.Random, ev: Event) -> bytes:
        if source is not None:
            ev = _with_source(ev, source)
        target = ev
        *parents, leaf = path.split(".")
        for key in parents:
            target = target[key]
        edit(target, leaf)
        return orjson.dumps(ev)

    mutate.__name__ = name
    return mutate


def _set(path: str, value: Any, source: str | None = None) -> Mutation:
    return _at(path, source, lambda target, leaf: target.__setitem__(leaf, value),
               f"set {path}={value!r}")


def _drop(path: str, source: str | None = None) -> Mutation:
    return _at(path, source, lambda target, leaf: target.__delitem__(leaf), f"drop {path}")


_PAYLOADS: dict[str, Event] = {
    "security.incident": {"incident_type": "robbery", "severity": 3, "reported_by": "citizen"},
    "survey.victimization": {
        "respondent_age": 40, "victimized": True, "perceived_safety": 3, "reported_to_police": True,
    },
    "migration.case": {
        "case_type": "visa", "origin_country": "PE", "status": "open", "applicants": 2,
    },
}


def _with_source(ev: Event, source: str) -> Event:
    return {**ev, "source": source, "payload": dict(_PAYLOADS[source])}


def _raw(data: bytes) -> Mutation:
    def mutate(rng: random.Random, ev: Event) -> bytes:
        return data

    mutate.__name__ = f"raw {data[:20]!r}"
    return mutate


def _truncated(rng: random.Random, ev: Event) -> bytes:
    line = orjson.dumps(ev)
    return line[: 10 + int(rng.random() * (len(line) - 20))]


def _nul(rng: random.Random, ev: Event) -> bytes:
    line = orjson.dumps(ev)
    return line[:30] + b"\x00" + line[30:]


def _bad_utf8(rng: random.Random, ev: Event) -> bytes:
    return orjson.dumps(ev).replace(b'"1.0"', b'"1.\xff\xfe"')


SEC, SUR, MIG = "security.incident", "survey.victimization", "migration.case"
MUTATIONS: tuple[Mutation, ...] = (
    *(_drop(f) for f in ("event_id", "timestamp", "region", "source", "schema_version",
                         "correlation_id", "payload")),
    _set("extra", 1),
    _set("event_id", "not-a-uuid"),
    _set("event_id", 12345),
    _set("correlation_id", "6f1c0000-0000-0000-0000-00000000000g"),
    _set("timestamp", "2026-11-26T13:14:01.123456"),
    _set("timestamp", "2026-13-26T13:14:01Z"),
    _set("timestamp", "yesterday"),
    _set("region", "atlantis"),
    _set("region", "Metropolitana"),
    _set("source", "weather.report"),
    _set("schema_version", "2.0"),
    _set("schema_version", 1.0),
    _set("payload", "robbery"),
    _set("payload.incident_type", "piracy", SEC),
    _set("payload.severity", 0, SEC),
    _set("payload.severity", 6, SEC),
    _set("payload.severity", True, SEC),
    _set("payload.severity", "3", SEC),
    _set("payload.reported_by", "neighbour", SEC),
    _drop("payload.reported_by", SEC),
    _set("payload.extra", 1, SEC),
    _set("payload.respondent_age", 14, SUR),
    _set("payload.respondent_age", 111, SUR),
    _set("payload.victimized", 1, SUR),
    _set("payload.perceived_safety", 0, SUR),
    _set("payload.perceived_safety", 6, SUR),
    _set("payload.reported_to_police", "no", SUR),
    _set("payload.victimized", False, SUR),
    _drop("payload.respondent_age", SUR),
    _set("payload.case_type", "tourism", MIG),
    _set("payload.origin_country", "pe", MIG),
    _set("payload.origin_country", "PER", MIG),
    _set("payload.status", "closed", MIG),
    _set("payload.applicants", 0, MIG),
    _set("payload.applicants", 51, MIG),
    _drop("payload.status", MIG),
    _raw(b"this is not json"),
    _truncated,
    _raw(b"[1, 2, 3]"),
    _raw(b"42"),
    _raw(b"null"),
    _raw(b"{}"),
    _bad_utf8,
    _nul,
)
