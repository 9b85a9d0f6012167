"""Packs: a pipeline's vocabulary as data. lab3's verdicts, generation from any pack, user packs."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from evtool.core.checks import predicate
from evtool.core.generator import GenConfig, Generator
from evtool.core.invalid import mutations_for
from evtool.core.pack import PackError
from evtool.schemas import builtin_packs, load_pack
from evtool.store.engine import sqlite3
from tests.conftest import START, pack_validator, pipeline, records, run

FIXTURE = Path(__file__).parent / "fixtures" / "lab3_publisher.ndjson"
T0_US = 1_795_000_000 * 1_000_000

# lab3's validator, restated from what its code does (see the packs issue): an envelope with six
# required fields, a v4 lower-case event_id, whole-second Z timestamps, five regions, other fields
# allowed; each source's payload requires its fields with few type rules. It runs jsonschema's
# default (latest) draft with no format checks.
_UUID4 = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
LAB3_RULES = {
    "envelope": {
        "type": "object",
        "required": ["event_id", "timestamp", "region", "source", "schema_version", "payload"],
        "properties": {
            "event_id": {"type": "string", "pattern": _UUID4},
            "timestamp": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"},
            "region": {"type": "string", "enum": ["norte", "sur", "centro", "este", "oeste"]},
            "source": {"type": "string"}, "schema_version": {"type": "string"},
            "payload": {"type": "object"},
        },
    },
    "security.incident": {
        "type": "object", "required": ["crime_type", "severity", "location", "reported_by"],
        "properties": {"crime_type": {"type": "string"}, "severity": {"type": "string"},
                       "location": {"type": "object", "required": ["latitude", "longitude"]},
                       "reported_by": {"type": "string"}},
    },
    "survey.victimization": {
        "type": "object", "required": ["survey_id", "respondent_age", "victimization_type", "reported"],
        "properties": {"respondent_age": {"type": "integer"}, "reported": {"type": "boolean"}},
    },
    "migration.case": {
        "type": "object", "required": ["case_id", "case_type", "status", "origin_country"],
        "properties": {"status": {"type": "string"}},
    },
}
_CHECKS = {name: jsonschema.validators.validator_for({})(schema) for name, schema in LAB3_RULES.items()}


def lab3_accepts(event: object) -> bool:
    """The original validator's verdict, by its rules."""
    if not _CHECKS["envelope"].is_valid(event):
        return False
    assert isinstance(event, dict)
    check = _CHECKS.get(event["source"]) if event["source"] != "envelope" else None
    return check is not None and check.is_valid(event["payload"])


def fixture_events() -> list[dict]:
    return [orjson.loads(line) for line in FIXTURE.read_bytes().splitlines()]


def base_of(source: str) -> dict:
    return next(e for e in fixture_events() if e["source"] == source)


def _edit(event: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(event)
    *parents, leaf = path.split(".")
    target = out
    for key in parents:
        target = target[key]
    if value is DROP:
        target.pop(leaf)
    else:
        target[leaf] = value
    return out


DROP = object()
ENVELOPE_EDITS = [
    *((f, DROP) for f in ("event_id", "timestamp", "region", "source", "schema_version", "payload")),
    ("correlation_id", DROP), ("correlation_id", 17), ("extra", {"any": "thing"}),
    ("event_id", "21FCCD65-8B61-4FC6-9A61-136A6BA3B221"),
    ("event_id", "21fccd65-8b61-1fc6-9a61-136a6ba3b221"),
    ("event_id", "21fccd65-8b61-4fc6-7a61-136a6ba3b221"), ("event_id", 5),
    ("timestamp", "2026-11-26T23:30:29.5Z"), ("timestamp", "2026-11-26T23:30:29+00:00"),
    ("timestamp", "2026-11-26 23:30:29Z"), ("timestamp", "2026-13-45T99:99:99Z"), ("timestamp", None),
    ("region", "metropolitana"), ("region", "Norte"), ("region", ["norte"]),
    ("source", "weather.report"), ("source", 3), ("schema_version", 1.0), ("schema_version", "9"),
    ("payload", "text"), ("payload", []),
]
PAYLOAD_EDITS = {
    "security.incident": [
        *((f"payload.{f}", DROP) for f in ("crime_type", "severity", "location", "reported_by")),
        ("payload.severity", 3), ("payload.crime_type", "piracy"), ("payload.crime_type", None),
        ("payload.location", "-33,-70"), ("payload.location.latitude", DROP),
        ("payload.location.longitude", DROP), ("payload.location.latitude", "south"),
        ("payload.reported_by", False), ("payload.extra", 1),
    ],
    "survey.victimization": [
        *((f"payload.{f}", DROP) for f in ("survey_id", "respondent_age", "victimization_type",
                                          "reported", "incident_date")),
        ("payload.respondent_age", "42"), ("payload.respondent_age", 42.0), ("payload.respondent_age", 42.5),
        ("payload.respondent_age", True), ("payload.reported", 1), ("payload.reported", "yes"),
        ("payload.survey_id", 12), ("payload.victimization_type", None),
    ],
    "migration.case": [
        *((f"payload.{f}", DROP) for f in ("case_id", "case_type", "status", "origin_country",
                                          "application_date")),
        ("payload.status", 1), ("payload.status", "closed"), ("payload.case_type", 7),
        ("payload.origin_country", ["Peru"]),
    ],
}
NOT_EVENTS: list[object] = [[], [1, 2], "event", 42, 4.2, True, None, {}]


def lab3_corpus() -> list[object]:
    corpus: list[object] = list(NOT_EVENTS)
    for source, edits in PAYLOAD_EDITS.items():
        base = base_of(source)
        corpus.append(base)
        corpus += [_edit(base, path, value) for path, value in ENVELOPE_EDITS + edits]
    return corpus


def test_lab3_verdicts_equal_the_original_validators() -> None:
    corpus = lab3_corpus()
    assert len(corpus) >= 60
    verdicts = [lab3_accepts(e) for e in corpus]
    assert 10 < sum(verdicts) < len(corpus) - 30           # the corpus holds both verdicts
    ours = [pack_validator("lab3").error(e) is None for e in corpus]
    assert ours == verdicts, [e for e, a, b in zip(corpus, ours, verdicts, strict=True) if a != b]
    data = b"".join(orjson.dumps(e) + b"\n" for e in corpus)
    out = records(run(["validate", "--pack", "lab3", "-q"], stdin=data).stdout)
    assert ["kind" not in r for r in out] == verdicts


def test_every_event_of_lab3s_real_publisher_passes() -> None:
    events = fixture_events()
    assert len(events) == 200 and {e["source"] for e in events} == set(PAYLOAD_EDITS)
    assert all(lab3_accepts(e) for e in events)
    result = run(["validate", "--pack", "lab3"], stdin=FIXTURE.read_bytes())
    assert result.stdout == FIXTURE.read_bytes()
    assert b"200 in, 200 out, 0 dead letters" in result.stderr


def test_every_lab3_mutation_gets_the_original_verdict() -> None:
    """gen --invalid's broken lab3 events are rejected by both, rule by rule."""
    pack = load_pack("lab3")
    gen = Generator(GenConfig(start_us=T0_US, pack=pack, seed=2))
    rng = random.Random(3)
    for mutation in mutations_for(pack, lambda s: predicate(s, "if")):
        line = None
        while line is None:
            line = mutation.apply(rng, gen.event(T0_US, mutation.source))
        try:
            event = json.loads(line)
        except ValueError:
            continue
        assert not lab3_accepts(event), mutation.name
        assert pack_validator("lab3").error(event) is not None, mutation.name


@pytest.mark.slow
def test_gen_lab3_is_what_lab3s_validator_accepts_and_runs_through_the_pipeline(tmp) -> None:
    made = run(["gen", "--pack", "lab3", "--count", "100000", "--seed", "8", "--start", START,
                "--fast", "--rate", "200", "--burst-probability", "0.01", "-q"]).stdout
    events = [json.loads(line) for line in made.splitlines()]
    assert len(events) == 100000 and all(lab3_accepts(e) for e in events)
    assert all(e["correlation_id"].startswith("corr-") and e["timestamp"].endswith("Z") for e in events)
    shares = {s: sum(e["source"] == s for e in events) / len(events) for s in PAYLOAD_EDITS}
    assert abs(shares["security.incident"] - 0.5) < 0.05 and abs(shares["migration.case"] - 0.2) < 0.03
    db = tmp / "audit.db"
    _out, errs = pipeline(["gen", "--pack", "lab3", "--count", "20000", "--seed", "8", "--start", START,
                          "--fast", "--rate", "200", "--duplicates", "0.02"],
                         ["validate", "--pack", "lab3"], ["aggregate", "--forward"],
                         ["audit", "--db", str(db)])
    assert b"0 dead letters" in errs[1]
    verify = run(["replay", "--db", str(db), "--verify"])
    assert verify.returncode == 0 and b"0 differences" in verify.stderr
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT region) FROM events_in").fetchone()
    assert stored[0] > 19000 and stored[1] == 5


def test_packs_are_listed_and_shown_without_reading_the_source() -> None:
    assert builtin_packs() == ["cloudevents", "evtool", "lab3"]
    listing = run(["--list-packs"]).stdout.decode()
    assert "evtool" in listing and "lab3" in listing
    shown = run(["--show-pack", "lab3"]).stdout.decode()
    for fact in ("norte sur centro este oeste", "security.incident 50%", "crime_type",
                 "correlation_id (optional)", "latitude", "(other fields allowed)"):
        assert fact in shown, fact


def write_pack(folder: Path, files: dict[str, object]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


WEATHER = {
    "type": "object", "required": ["station", "reading", "tags"], "additionalProperties": False,
    "properties": {
        "station": {"type": "string", "pattern": "^ST-[A-Z]{2}[0-9]{3}$"},
        "reading": {
            "type": "object", "required": ["celsius", "at"], "additionalProperties": False,
            "properties": {"celsius": {"type": "number", "minimum": -60, "maximum": 55},
                           "at": {"type": "string", "format": "date-time"},
                           "humidity": {"type": "integer", "minimum": 0, "maximum": 100}}},
        "tags": {"type": "array", "minItems": 1, "maxItems": 4,
                 "items": {"type": "string", "enum": ["rain", "wind", "snow", "fog"]}},
        "note": {"type": "string", "maxLength": 40, "examples": ["calibrated", "manual read"]},
    },
}
TRAFFIC = {
    "type": "object", "required": ["plate", "speed", "camera"],
    "properties": {
        "plate": {"type": "string", "pattern": "^[A-Z]{4}[0-9]{2}$"},
        "speed": {"type": "integer", "minimum": 0, "maximum": 250},
        "camera": {"type": "object", "required": ["id", "lanes"],
                   "properties": {"id": {"type": "string", "format": "uuid"},
                                  "lanes": {"type": "array", "items": {"type": "integer", "minimum": 1,
                                                                        "maximum": 6}}}},
        "ticket": {"type": "boolean"},
    },
    "if": {"properties": {"ticket": {"const": True}}, "required": ["ticket"]},
    "then": {"properties": {"speed": {"minimum": 120}}},
}
USER_PACK: dict[str, Any] = {
    "pack.json": {"name": "city", "description": "a city's sensors",
                  "sources": {"weather.reading": 2, "traffic.camera": 1}},
    "envelope.json": {
        "type": "object", "additionalProperties": False,
        "required": ["event_id", "timestamp", "region", "source", "correlation_id", "payload"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "timestamp": {"type": "string", "format": "date-time"},
            "region": {"type": "string", "enum": ["north-side", "harbour", "old-town"]},
            "source": {"type": "string"},
            "correlation_id": {"type": "string", "minLength": 1, "examples": ["shift-a", "shift-b"]},
            "payload": {"type": "object"},
        },
    },
    "payloads/weather.reading.json": WEATHER,
    "payloads/traffic.camera.json": TRAFFIC,
}


def test_a_user_pack_runs_the_whole_pipeline_with_no_code(tmp) -> None:
    pack = str(write_pack(tmp / "city", USER_PACK))
    gen = ["gen", "--pack", pack, "--count", "5000", "--seed", "4", "--start", START, "--fast",
           "--rate", "100", "--duplicates", "0.02", "--out-of-order", "0.05", "--max-delay", "1"]
    made = records(run(gen).stdout)
    assert {e["region"] for e in made} == {"north-side", "harbour", "old-town"}
    assert {e["correlation_id"] for e in made} == {"shift-a", "shift-b"}
    tickets = [e["payload"] for e in made if e["payload"].get("ticket") is True]
    assert tickets and all(p["speed"] >= 120 for p in tickets)
    assert any("humidity" in e["payload"].get("reading", {}) for e in made)
    assert any("humidity" not in e["payload"].get("reading", {"humidity": 1}) for e in made)
    db = tmp / "city.db"
    _out, errs = pipeline(gen, ["validate", "--pack", pack], ["aggregate", "--forward", "--lateness", "1"],
                         ["audit", "--db", str(db)])
    assert b"0 dead letters" in errs[1] and b"0 late" in errs[2]
    verify = run(["replay", "--db", str(db), "--verify"])
    assert verify.returncode == 0 and b" 0 differences" in verify.stderr


def test_gen_invalid_breaks_every_rule_of_a_user_pack(tmp) -> None:
    pack_dir = write_pack(tmp / "city", USER_PACK)
    pack = load_pack(str(pack_dir))
    rules = [m for m in mutations_for(pack, lambda s: predicate(s, "if"))
             if not m.name.startswith("malformed")]
    assert len(rules) > 40
    made = run(["gen", "--pack", str(pack_dir), "--count", "4000", "--invalid", "0.2", "--seed", "5",
                "--start", START, "--fast"])
    invalid = int(made.stderr.split(b"(")[1].split(b" invalid")[0].split(b", ")[1])
    assert invalid > 2 * (len(rules) + 8)           # the shuffled cycle goes through every rule twice
    checked = run(["validate", "--pack", str(pack_dir), "-q"], stdin=made.stdout)
    dead = [r for r in records(checked.stdout) if r.get("kind") == "deadletter"]
    assert len(dead) == invalid
    errors = " ".join(d["error"] for d in dead)
    for field in ("station", "reading.celsius", "reading.at", "reading.humidity", "tags", "note",
                  "plate", "speed", "camera.id", "camera.lanes", "ticket", "correlation_id",
                  "event_id", "timestamp", "region", "x_unexpected_field", "no.such.source"):
        assert field in errors, field


@pytest.mark.parametrize(("files", "message"), [
    ({"pack.json": "{nope", "envelope.json": {}}, "pack.json: not valid JSON"),
    ({"pack.json": {"name": "x"}}, "envelope.json: missing"),
    ({"pack.json": {"name": "x"}, "envelope.json": {"type": "object"}}, "no <source>.json"),
    ({"pack.json": {"name": "x", "sources": {"a": -1}}, "envelope.json": {},
      "payloads/a.json": {}}, "weight of 'a'"),
    ({"pack.json": {"name": "x"}, "envelope.json": {"$ref": "http://example.org/s.json"},
      "payloads/a.json": {}}, "never fetch"),
    ({"pack.json": {"name": "x"}, "envelope.json": {"type": "object"},
      "payloads/a.json": {"properties": {"b": {"$ref": "file:///etc/passwd"}}}}, "a.json: $ref"),
    ({"pack.json": {"name": "x"}, "envelope.json": {"type": "object", "properties": {
        "region": {"enum": ["r"]}}}, "payloads/a.json": {"type": "nonsense"}}, "a.json: invalid JSON Schema"),
])
def test_a_broken_pack_is_one_line_naming_the_file(tmp, files, message) -> None:
    folder = write_pack(tmp / "bad", files)
    for command in (["gen", "--count", "1"], ["validate"]):
        result = run([*command, "--pack", str(folder)], stdin=b"")
        assert result.returncode == 2 and b"Traceback" not in result.stderr
        assert message in result.stderr.decode(), result.stderr


def test_schema_dir_overlays_the_chosen_pack_and_regions_override_it(tmp) -> None:
    (tmp / "extra").mkdir()
    (tmp / "extra" / "security.incident.json").write_text(json.dumps(
        {"type": "object", "required": ["crime_type"], "properties": {"crime_type": {"const": "theft"}}}))
    event = base_of("security.incident")
    other = _edit(event, "payload.crime_type", "assault")
    moved = _edit(event, "region", "antartica")
    data = b"".join(orjson.dumps(e) + b"\n" for e in (event, other, moved))
    result = run(["validate", "--pack", "lab3", "--schema-dir", str(tmp / "extra"), "--regions",
                  "este,antartica", "-q"], stdin=data)
    verdicts = ["kind" not in r for r in records(result.stdout)]
    assert verdicts == [event["region"] == "este", False, True]


def test_a_pack_needs_a_region_list_for_gen(tmp) -> None:
    files = {**USER_PACK, "envelope.json": {"type": "object", "properties": {"region": {"type": "string"}}}}
    with pytest.raises(PackError, match="region"):
        Generator(GenConfig(start_us=T0_US, pack=load_pack(str(write_pack(tmp / "p", files)))))


def test_schema_dir_never_fetches(tmp) -> None:
    (tmp / "s").mkdir()
    (tmp / "s" / "weather.report.json").write_text(json.dumps(
        {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:1/evil.json"}}}))
    result = run(["validate", "--schema-dir", str(tmp / "s")], stdin=b"")
    assert result.returncode == 2 and b"never fetch" in result.stderr and b"Traceback" not in result.stderr
