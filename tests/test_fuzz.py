"""Random bytes and random JSON into validate and aggregate: never an exception, and every
record accounted for: records in = records out + dead letters + duplicates."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.records import reject_oversize
from evtool.core.stats import Stats
from evtool.core.validation import ValidateStage
from tests.conftest import checker, pack_validator
from tests.test_schema import BASE

CAP = 2048
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
near_events = st.builds(
    lambda changes: {**BASE, **changes},
    st.dictionaries(st.sampled_from([*BASE, "kind", "extra"]), json_values, max_size=3),
)
lines = st.lists(
    st.one_of(
        st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" ")),
        json_values.map(orjson.dumps),
        near_events.map(orjson.dumps),
        st.just(orjson.dumps(BASE)),
        st.binary(min_size=CAP + 1, max_size=CAP + 50).map(lambda b: b.replace(b"\n", b" ")),
    ),
    max_size=40,
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_stage(stage, stats: Stats, name: str, batch: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    out: list[bytes] = []
    dead: list[bytes] = []
    kept = reject_oversize(name, batch, CAP, stats, dead)
    stage.process(kept, out, dead)
    stage.finish(out, dead)
    return out, dead


def counted_in(batch: list[bytes]) -> int:
    return sum(1 for x in batch if x.strip())


@SETTINGS
@given(lines)
def test_validate_never_raises_and_accounts_for_every_line(batch) -> None:
    stats = Stats()
    out, dead = run_stage(ValidateStage(pack_validator(), checker(), stats,
                                        CAP), stats, "validate", batch)
    assert counted_in(batch) == len(out) + len(dead)
    assert stats.in_ == counted_in(batch)
    assert sum(stats.dead.values()) == len(dead)
    assert all(orjson.loads(x)["kind"] == "deadletter" for x in dead)


@SETTINGS
@given(lines)
def test_aggregate_never_raises_and_accounts_for_every_line(batch) -> None:
    stats = Stats()
    stage = AggregateStage(AggregateConfig(forward=True), stats, checker())
    out, dead = run_stage(stage, stats, "aggregate", batch)
    derived = sum(1 for x in out if orjson.loads(x).get("kind") in ("window", "metric", "alert"))
    passed = len(out) - derived
    assert counted_in(batch) == passed + len(dead) + stats.duplicates
    assert sum(stats.dead.values()) == len(dead)
