"""One test per rule of the contract's table, the raw-line cases, and the fast path's soundness."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.checks import predicate
from evtool.core.generator import GenConfig, Generator
from evtool.core.invalid import mutations_for
from evtool.core.records import parse
from evtool.core.stats import Stats
from evtool.core.validation import EventValidator, ValidateStage
from evtool.schemas import load_pack
from tests.conftest import checker, gen_lines, pack_validator, records, run

SEC = {"incident_type": "robbery", "severity": 3, "reported_by": "citizen"}
SUR = {"respondent_age": 40, "victimized": True, "perceived_safety": 3, "reported_to_police": True}
MIG = {"case_type": "visa", "origin_country": "PE", "status": "open", "applicants": 2}
BASE: dict[str, Any] = {
    "event_id": "6f1c0a2e-5b1d-4e8e-9a57-6576746f6f6c", "timestamp": "2026-11-26T13:14:01.123456+00:00",
    "region": "metropolitana", "source": "security.incident", "schema_version": "1.0",
    "correlation_id": "9b2e0a2e-5b1d-4e8e-9a57-6576746f6f6c", "payload": SEC,
}


def ev(source_payload: dict | None = None, **fields: Any) -> dict:
    out = copy.deepcopy(BASE)
    if source_payload is not None:
        out["source"] = {id(SEC): "security.incident", id(SUR): "survey.victimization",
                         id(MIG): "migration.case"}[id(source_payload)]
        out["payload"] = copy.deepcopy(source_payload)
    for key, value in fields.items():
        if key.startswith("p_"):
            if value is DROP:
                del out["payload"][key[2:]]
            else:
                out["payload"][key[2:]] = value
        elif value is DROP:
            del out[key]
        else:
            out[key] = value
    return out


DROP: Any = object()
VALID = [
    ev(), ev(SUR), ev(MIG), ev(event_id="6F1C0A2E-5B1D-4E8E-9A57-6576746F6F6C"),
    ev(timestamp="2026-11-26T13:14:01Z"), ev(timestamp="2026-11-26T13:14:01-03:00"),
    ev(timestamp="2026-11-26T13:14:01.5+05:30"), ev(schema_version="1.3"),
    ev(SUR, p_victimized=False, p_reported_to_police=False), ev(SEC, p_severity=1),
    ev(SEC, p_severity=5), ev(SUR, p_respondent_age=15), ev(SUR, p_respondent_age=110),
    ev(MIG, p_applicants=1), ev(MIG, p_applicants=50), ev(region="los-rios"),
]
# (rule, event, field the error must name)
INVALID = [
    ("extra envelope field", ev(extra=1), "extra"),
    *[(f"missing {f}", ev(**{f: DROP}), f) for f in BASE],
    ("event_id not a UUID", ev(event_id="6f1c0a2e5b1d4e8e9a576576746f6f6c"), "event_id"),
    ("event_id not hex", ev(event_id="6f1c0a2e-5b1d-4e8e-9a57-6576746f6f6g"), "event_id"),
    ("event_id a number", ev(event_id=7), "event_id"),
    ("correlation_id not a UUID", ev(correlation_id="abc"), "correlation_id"),
    ("timestamp without offset", ev(timestamp="2026-11-26T13:14:01.123456"), "timestamp"),
    ("timestamp impossible date", ev(timestamp="2026-02-30T13:14:01Z"), "timestamp"),
    ("timestamp not a date", ev(timestamp="today"), "timestamp"),
    ("region unknown", ev(region="atlantis"), "region"),
    ("region wrong case", ev(region="Maule"), "region"),
    ("source unknown", ev(source="weather.report"), "source"),
    ("schema_version 2.x", ev(schema_version="2.0"), "schema_version"),
    ("schema_version a number", ev(schema_version=1.0), "schema_version"),
    ("schema_version no minor", ev(schema_version="1."), "schema_version"),
    ("payload not an object", ev(payload=[1]), "payload"),
    ("incident_type unknown", ev(SEC, p_incident_type="piracy"), "incident_type"),
    ("severity 0", ev(SEC, p_severity=0), "severity"),
    ("severity 6", ev(SEC, p_severity=6), "severity"),
    ("severity boolean", ev(SEC, p_severity=True), "severity"),
    ("severity string", ev(SEC, p_severity="3"), "severity"),
    ("severity fraction", ev(SEC, p_severity=2.5), "severity"),
    ("reported_by unknown", ev(SEC, p_reported_by="dog"), "reported_by"),
    ("incident extra field", ev(SEC, p_extra=1), "extra"),
    ("incident missing field", ev(SEC, p_severity=DROP), "severity"),
    ("respondent_age 14", ev(SUR, p_respondent_age=14), "respondent_age"),
    ("respondent_age 111", ev(SUR, p_respondent_age=111), "respondent_age"),
    ("victimized not boolean", ev(SUR, p_victimized=1), "victimized"),
    ("perceived_safety 0", ev(SUR, p_perceived_safety=0), "perceived_safety"),
    ("perceived_safety 6", ev(SUR, p_perceived_safety=6), "perceived_safety"),
    ("reported_to_police not boolean", ev(SUR, p_reported_to_police="no"), "reported_to_police"),
    ("reported although not victimized", ev(SUR, p_victimized=False), "reported_to_police"),
    ("survey missing field", ev(SUR, p_perceived_safety=DROP), "perceived_safety"),
    ("case_type unknown", ev(MIG, p_case_type="tourism"), "case_type"),
    ("origin_country lower case", ev(MIG, p_origin_country="pe"), "origin_country"),
    ("origin_country three letters", ev(MIG, p_origin_country="PER"), "origin_country"),
    ("origin_country trailing newline", ev(MIG, p_origin_country="PE\n"), "origin_country"),
    ("status unknown", ev(MIG, p_status="closed"), "status"),
    ("applicants 0", ev(MIG, p_applicants=0), "applicants"),
    ("applicants 51", ev(MIG, p_applicants=51), "applicants"),
    ("payload of another source", ev(MIG, source="security.incident"), "payload"),
]
RAW = [
    ("not JSON", b"hello", "json"),
    ("truncated", orjson.dumps(BASE)[:40], "json"),
    ("array", b"[1, 2]", "schema"),
    ("scalar", b"42", "schema"),
    ("string", b'"text"', "schema"),
    ("null", b"null", "schema"),
    ("invalid UTF-8", orjson.dumps(BASE).replace(b"maule", b"ma\xffle").replace(
        b"metropolitana", b"metro\xc3\x28politana"), "encoding"),
    ("NUL byte", b'{"event_id": "a\x00b"}', "json"),
    ("NUL outside a string", b"{\x00}", "json"),
]


# jsonschema checks date-time only with extra packages, and uses Python's `$`, which matches
# before a final newline (ECMA 262's, the dialect of JSON Schema, does not).
LAX_IN_JSONSCHEMA = {"origin_country trailing newline"}


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return pack_validator()


def independent_verdict(event: dict) -> bool:
    """The shipped schemas read by another implementation (jsonschema, Draft 7, formats on)."""
    pack = load_pack()
    env, payloads = pack.envelope, pack.payloads
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    if not jsonschema.Draft7Validator(env, format_checker=checker).is_valid(event):
        return False
    schema = payloads.get(event["source"])
    return schema is not None and jsonschema.Draft7Validator(schema).is_valid(event["payload"])


@pytest.mark.parametrize("event", VALID)
def test_valid_events(validator: EventValidator, event: dict) -> None:
    assert validator.error(event) is None
    assert independent_verdict(event)


@pytest.mark.parametrize(("rule", "event", "field"), INVALID, ids=[r for r, _, _ in INVALID])
def test_each_rule_rejects_and_names_the_field(validator, rule, event, field) -> None:
    problem = validator.error(event)
    assert problem is not None and field in problem, problem
    assert not validator.accept(event)
    if field != "timestamp" and rule not in LAX_IN_JSONSCHEMA:
        assert not independent_verdict(event)


def test_through_the_cli_every_rule_is_a_dead_letter_with_raw_line() -> None:
    lines = [orjson.dumps(e) for _, e, _ in INVALID] + [orjson.dumps(e) for e in VALID]
    result = run(["validate", "-q"], stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0
    out = records(result.stdout)
    dead = [r for r in out if r.get("kind") == "deadletter"]
    assert len(dead) == len(INVALID) and len(out) == len(INVALID) + len(VALID)
    for (rule, event, field), letter in zip(INVALID, dead, strict=True):
        assert letter["reason"] == "schema" and letter["stage"] == "validate"
        assert field in letter["error"], (rule, letter["error"])
        assert json.loads(letter["raw"]) == event
    assert dead[0]["event_id"] == BASE["event_id"]


@pytest.mark.parametrize(("case", "line", "reason"), RAW, ids=[c for c, _, _ in RAW])
def test_raw_line_cases(case: str, line: bytes, reason: str) -> None:
    result = run(["validate", "-q"], stdin=line + b"\n")
    assert result.returncode == 0 and not result.stderr
    (letter,) = records(result.stdout)
    assert letter["kind"] == "deadletter" and letter["reason"] == reason
    assert letter["raw"] == line.decode("utf-8", errors="replace")


def test_over_the_line_cap_is_too_large_and_the_next_line_survives() -> None:
    big = b'{"x": "' + b"a" * 5000 + b'"}'
    good = orjson.dumps(BASE)
    result = run(["validate", "-q", "--max-line-bytes", "1000"], stdin=big + b"\n" + good + b"\n")
    first, second = records(result.stdout)
    assert first["reason"] == "too_large" and "1000" in first["error"]
    assert first["raw"] == big[:1001].decode()
    assert second == BASE


def test_unknown_kinds_pass_unchanged_and_broken_known_kinds_are_dead_letters() -> None:
    unknown = b'{"kind":"heartbeat","n":[1,2]}'
    broken = b'{"kind":"metric","metric_id":"x","total":3}'
    result = run(["validate", "-q"], stdin=unknown + b"\n" + broken + b"\n")
    first, second = result.stdout.splitlines()
    assert first == unknown
    letter = orjson.loads(second)
    assert letter["reason"] == "schema" and letter["raw"] == broken.decode()
    assert "date" in letter["error"] and result.returncode == 0


def test_regions_option_changes_the_allowed_set() -> None:
    line = orjson.dumps(ev(region="north")) + b"\n" + orjson.dumps(ev()) + b"\n"
    result = run(["validate", "-q", "--regions", "north,south"], stdin=line)
    a, b = records(result.stdout)
    assert "kind" not in a and b["reason"] == "schema" and "region" in b["error"]


def test_schema_dir_adds_a_source_and_replaces_one(tmp) -> None:
    (tmp / "weather.report.json").write_text(json.dumps({
        "type": "object", "required": ["celsius"], "additionalProperties": False,
        "properties": {"celsius": {"type": "number", "minimum": -90, "maximum": 60}}}))
    (tmp / "security.incident.json").write_text(json.dumps({
        "type": "object", "required": ["severity"],
        "properties": {"severity": {"type": "integer", "minimum": 1, "maximum": 10}}}))
    events = [ev(source="weather.report", payload={"celsius": 21.5}),
              ev(source="weather.report", payload={"celsius": 99}),
              ev(SEC, p_severity=9)]
    data = b"".join(orjson.dumps(e) + b"\n" for e in events)
    result = run(["validate", "-q", "--schema-dir", str(tmp)], stdin=data)
    a, b, c = records(result.stdout)
    assert "kind" not in a and "kind" not in c
    assert b["reason"] == "schema" and "celsius" in b["error"]


def test_broken_schema_dir_is_a_usage_error(tmp) -> None:
    (tmp / "x.json").write_text("{not json")
    result = run(["validate", "--schema-dir", str(tmp)], stdin=b"")
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert b"x.json" in result.stderr


def gen_predicate(schema: dict):
    return predicate(schema, "if")


def test_generator_invalid_catalogue_is_all_rejected(validator) -> None:
    rng = random.Random(5)
    gen = Generator(GenConfig(start_us=0, pack=load_pack(), seed=1))
    stage = ValidateStage(validator, checker(), Stats(), 1 << 20)
    for mutation in mutations_for(load_pack(), gen_predicate):
        line = None
        while line is None:
            line = mutation.apply(rng, gen.event(1_795_000_000_000_000, mutation.source))
        out: list[bytes] = []
        stage.process([line], out, out)
        assert b'"kind":"deadletter"' in out[0], mutation.name


# The fast path may only accept what the compiled schemas accept.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 120) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FIELDS = [*BASE, *SEC, *SUR, *MIG]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([BASE, ev(SUR), ev(MIG)]), st.lists(
    st.tuples(st.sampled_from(FIELDS), st.one_of(json_values, st.sampled_from(
        [True, False, 0, 1, 1.0, 5, 6, 15, 110, "PE", "pe", "1.0", "2026-02-29T00:00:00Z", DROP]))),
    max_size=3))
def test_fast_accept_implies_schema_valid(validator, base, changes) -> None:
    event = copy.deepcopy(base)
    for field, value in changes:
        target = event if field in BASE else event.get("payload")
        if not isinstance(target, dict):
            continue
        if value is DROP:
            target.pop(field, None)
        else:
            target[field] = value
    if validator.accept(event):
        assert validator.slow_error(event) is None, event


# The whole-line fast path (no parse) may only accept lines that parse, with no duplicate key,
# into events the compiled schemas accept; and it accepts every line gen writes.
class NotFast(Exception):
    """The line left validate's fast path for the parse and the compiled schemas."""


def _line_ok(validator):
    """True for a line validate's own loop passes on its fast path, never parsing it."""
    from types import SimpleNamespace

    def slow(_event: object) -> None:
        raise NotFast

    assert validator.line_match is not None
    shim = SimpleNamespace(line_match=validator.line_match, accept=slow, slow_error=slow,
                           pack=validator.pack)
    stage = ValidateStage(shim, None, Stats(), 1 << 20)  # type: ignore[arg-type]

    def ok(line: bytes) -> bool:
        out: list[bytes] = []
        try:
            stage.process([line], out, [])
        except NotFast:
            return False
        return out == [line]

    return ok


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([BASE, ev(SUR), ev(MIG)]), st.lists(
    st.tuples(st.sampled_from(FIELDS), st.one_of(json_values, st.sampled_from(
        [True, False, 0, 1, 5, 6, 14, 15, 110, 111, 50, 51, "PE", "pe", "1.0", "1.", "2026-02-29T00:00:00Z",
         "2026-13-01T00:00:00Z", "9999-12-31T23:59:59.9999999Z", DROP]))),
    max_size=3), st.lists(st.tuples(st.integers(0, 400), st.sampled_from(
        [b"", b" ", b'"', b"\\", b",", b"\xff", b"0", b"x", b'"region":"maule",']),
        st.integers(0, 2)), max_size=2))
def test_line_fast_path_implies_schema_valid(validator, base, changes, edits) -> None:
    event = copy.deepcopy(base)
    for field, value in changes:
        target = event if field in BASE else event.get("payload")
        if isinstance(target, dict):
            if value is DROP:
                target.pop(field, None)
            else:
                target[field] = value
    line = orjson.dumps(event)
    for at, text, cut in edits:
        at = min(at, len(line))
        line = line[:at] + text + line[at + cut:]
    if _line_ok(validator)(line):
        parsed = parse(line)
        assert validator.slow_error(parsed) is None, line


def test_every_line_gen_writes_takes_the_line_fast_path(validator) -> None:
    ok = _line_ok(validator)
    lines = gen_lines(3000, 4, "--burst-probability", "0.01").splitlines()
    assert all(ok(line) for line in lines)
    only_two = _line_ok(EventValidator(load_pack().with_regions(["maule", "aysen"])))
    expected = [ok(x) and (b'"region":"maule"' in x or b'"region":"aysen"' in x) for x in lines]
    assert expected == [only_two(x) for x in lines] and any(expected)


def test_no_line_fast_path_when_the_envelope_says_more_than_it_can_mirror() -> None:
    """The expression stands in for the envelope's `source` and `payload` rules: when those rules
    say anything more, there must be no expression (the compiled schemas judge every line)."""
    import dataclasses

    from evtool.core.linematch import line_matcher

    pack = load_pack()
    assert line_matcher(pack) is not None
    for field, rule in (("payload", {"type": "object", "maxProperties": 1}),
                        ("source", {"type": "string", "maxLength": 3})):
        envelope = copy.deepcopy(pack.envelope)
        envelope["properties"][field] = rule
        assert line_matcher(dataclasses.replace(pack, envelope=envelope)) is None, field


def test_parse_refuses_a_repeated_key_whichever_order_the_keys_are_in() -> None:
    """parse re-serialises to prove a line has no repeated key, trying the sorted form first for
    derived records: a repeat must be caught in sorted and unsorted lines alike."""
    import pytest

    from evtool.core.records import DuplicateKey, parse

    for line in (b'{"kind":"metric","total":1,"total":2}', b'{"total":1,"kind":"metric","total":2}',
                 b'{"event_id":"a","region":"x","region":"y"}', b'{"kind":"window","by":{"b":1,"b":2}}'):
        with pytest.raises(DuplicateKey):
            parse(line)
    for line in (b'{"kind":"metric","total":1}', b'{"total":1,"kind":"metric"}',
                 b'{"event_id":"a","region":"x"}', b'{"kind":"w","b":{"z":1,"a":2}}'):
        assert parse(line) is not None
