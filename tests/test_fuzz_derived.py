"""Ten thousand derived records, each with one field made hostile (huge, negative, boundary,
wrong-typed, deep, empty), through every stage that reads them, both packs and both stores:
never a traceback, and every record is accounted for."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import PG, records, run

WINDOW = {"kind": "window", "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
          "total": 2, "by_source": {"a": 2}, "by_region": {"r": 2}, "by_region_source": {"r": {"a": 2}},
          "event_ids": ["e1", "e2"], "duplicates": 0}
METRIC = {"kind": "metric", "metric_id": "m1", "date": "2026-11-26", "region": "r",
          "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
          "window_seconds": 5, "counts": {"a": 2}, "total": 2, "input_event_ids": ["e1", "e2"]}
ALERT = {"kind": "alert", "alert_id": "a1", "window_start": "2026-11-26T00:00:00Z", "region": "r",
         "source": "a", "count": 9, "baseline": 1.5, "threshold": 5, "score": 7.25}
LETTER = {"kind": "deadletter", "stage": "validate", "reason": "schema", "error": "x", "raw": "{}",
          "event_id": "e1", "window_start": "2026-11-26T00:00:00Z", "window_seconds": 5}
HOSTILE = [2**31, 2**31 - 1, 2**63 - 1, 2**63, 2**64 - 1, -1, -(2**63), 0, 1e308, -1e308, 1.5, -0.0,
           True, None, "", "x" * 3000, "\x1b[2J", [], {}, [1, "a"], {"a": {"b": {"c": [None]}}},
           "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z"]


def deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def hostile_records(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    made: list[bytes] = []
    while len(made) < count:
        base: dict[str, Any] = dict(rng.choice([WINDOW, METRIC, ALERT, LETTER]))
        field = rng.choice([k for k in base if k != "kind"] + ["extra"])
        value = rng.choice([*HOSTILE, deep(rng.choice([50, 250, 300]))])
        if isinstance(base.get(field), dict) and rng.random() < 0.5:      # inside a map
            base[field] = {**base[field], rng.choice(["a", "r", "z"]): value}
        else:
            base[field] = value
        try:
            made.append(orjson.dumps(base))
        except TypeError:                       # deeper than JSON is written here: as text
            made.append(orjson.dumps({**base, field: None})[:-1] + b', "deep": ' +
                        b'{"a":' * 300 + b"1" + b"}" * 300 + b"}")
    return made


SUMMARY = re.compile(rb"(\d+) in, (\d+) out, (\d+) dead letters")


def accounted(stderr: bytes) -> tuple[int, int, int]:
    found = SUMMARY.findall(stderr)
    assert found, stderr[-500:]
    in_, out, dead = map(int, found[-1])
    return in_, out, dead


@pytest.fixture(scope="module")
def stream() -> bytes:
    return b"\n".join(hostile_records(10_000, 25)) + b"\n"


@pytest.mark.slow
@pytest.mark.parametrize("pack", ["evtool", "lab3"])
def test_hostile_derived_records_through_every_stage(tmp: Path, stream: bytes, pack: str) -> None:
    for stage in (["validate"], ["aggregate", "--dead-letter", str(tmp / "dead.ndjson")],
                  ["audit", "--db", str(tmp / f"{pack}.db")]):
        result = run([*stage, "--pack", pack], stdin=stream, timeout=300)
        assert result.returncode == 0 and b"Traceback" not in result.stderr, (stage, result.stderr[-800:])
        in_, out, dead = accounted(result.stderr)
        assert in_ == 10_000, stage
        written = len(records(result.stdout))
        if stage[0] == "aggregate":
            assert len(records((tmp / "dead.ndjson").read_bytes())) == dead
            written += dead
        assert in_ == out + dead == written, (stage, in_, out, dead, written)   # passed on or said
    watched = run(["watch", "--once", "--json", "--pack", pack, "-q"], stdin=stream, timeout=300)
    assert watched.returncode == 0 and b"Traceback" not in watched.stderr, watched.stderr[-800:]
    snap = orjson.loads(watched.stdout)
    assert snap["windows"] + snap["metrics"] + snap["unreadable"] <= 10_000


@pytest.mark.slow
def test_hostile_derived_records_into_postgresql(stream: bytes, pg_database: str) -> None:
    result = run(["audit", "--db", f"{PG}/{pg_database}"], stdin=stream, timeout=300)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-800:]
    in_, out, dead = accounted(result.stderr)
    assert in_ == 10_000 and in_ == out + dead
