"""Roles read fast and read alike: a naive time in the pack's zone, the parse ahead of the stage
for packs no expression reads, and the reader compiled from a pack's roles, each against the
roles' own reading."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.roles import RoleError, Roles
from tests.test_packs import write_pack
from tests.test_roles import DOWNLOADS, SENSORS, T0, download


@settings(max_examples=400, deadline=None)
@given(stamp=st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,9})?"
                           r"(Z|z|[+-][0-9]{2}:[0-9]{2}|)\Z") | st.text(max_size=12),
       zone=st.sampled_from(["UTC", "Z", "+05:30", "-03:00"]))
def test_a_naive_time_is_read_in_the_pack_zone_as_the_rfc_3339_reading_then_the_zone_would(
        stamp: str, zone: str) -> None:
    """A time without an offset goes straight to the pack's zone (no failed RFC 3339 reading
    first): the same instant, or the same refusal, as reading it as RFC 3339 and then in the zone."""
    from evtool.core.instant import TimeError, instant_us

    roles = Roles(time_zone=zone)
    try:
        want: int | None = instant_us(stamp)
    except TimeError:
        try:
            want = instant_us(stamp + ("Z" if zone in ("UTC", "Z") else zone))
        except TimeError:
            want = None
    try:
        got: int | None = roles.time_of(stamp)
    except RoleError:
        got = None
    assert got == want


def messy_events(pack: str, make: Any, count: int) -> list[bytes]:
    """`count` events of a pack, some sent twice, with lines no fast path may read as events."""
    rng = random.Random(11)
    good = [json.dumps(make(rng, n), separators=(",", ":")).encode() for n in range(count)]
    again = rng.sample(good, count // 10)
    derived = {**make(rng, count), "kind": "window"}      # roles readable, yet no event
    odd = [b"not json", b"[1,2]", b'{"a":1,"a":2}', b'{"kind":"window","total":1}', b"{}",
           good[0].replace(b"2026", b"twenty", 1), good[1] + b" ", b'{"ts":null}',
           json.dumps(derived).encode(), b'{"ts":0,"timestamp":0,' + good[2][1:]]   # a key twice
    stream = good + again + odd
    rng.shuffle(stream)
    return stream


def _download(rng: random.Random, n: int) -> dict[str, Any]:
    return download(T0 + timedelta(seconds=rng.randrange(60), microseconds=n), rng.randrange(9))


def _sensor(rng: random.Random, n: int) -> dict[str, Any]:
    return {"meta": {"id": f"s-{n}", "site": rng.choice(["north", "south"])},
            "ts": 1_795_000_000_000 + rng.randrange(30_000), "kind": rng.choice(["temp", "door"]),
            "body": {"open": True}}


@pytest.mark.parametrize("which", ["downloads", "sensors"])
def test_packs_no_expression_reads_are_parsed_ahead_as_the_stage_reads_them(tmp_path: Path,
                                                                          which: str) -> None:
    """A content id or nested roles: no expression reads the line, so the child reading ahead
    parses it and reads its roles (ParsedFields). The stage's output, dead letters and counts
    must be those of reading every line itself, and the parse must serve every plain event."""
    from evtool.cli.packs import pack_from_options
    from evtool.core.aggregate import AggregateConfig, AggregateStage
    from evtool.core.fields import ParsedFields
    from evtool.core.linereader import field_reader
    from evtool.core.stats import Stats
    from tests.conftest import checker

    folder = DOWNLOADS if which == "downloads" else str(write_pack(tmp_path / "sensors", SENSORS))
    pack = pack_from_options(folder)
    assert field_reader(pack) is None
    stream = messy_events(which, _download if which == "downloads" else _sensor, 2000)
    ahead = ParsedFields(pack.roles, pack.wire)

    def count(fields: ParsedFields | None) -> tuple[list[bytes], list[bytes], str]:
        cfg = AggregateConfig(forward=True, lateness=1, roles=pack.roles, wire=pack.wire)
        stage = AggregateStage(cfg, Stats(), checker(), None, fields)
        out: list[bytes] = []
        dead: list[bytes] = []
        for at in range(0, len(stream), 700):
            stage.process(stream[at:at + 700], out, dead)
        stage.finish(out, dead)
        return out, dead, stage.stats.summary(1.0)

    read = ahead(stream)
    good_start = b'{"timestamp"' if which == "downloads" else b'{"meta"'
    assert sum(got is not None for got in read) >= 2200          # every plain event, copies too
    assert all(got is None for got, line in zip(read, stream, strict=True)
               if not line.startswith(good_start))
    parsed, itself = count(ahead), count(None)
    assert parsed == itself
    assert len(parsed[1]) >= 5 and b'"window"' in b"".join(parsed[0])     # refused, passed on



# each layout with an event it reads: the test breaks some of its roles
LAYOUTS: list[tuple[Roles, dict[str, Any]]] = [
    (Roles(), {"event_id": "AbCdEf01-2345-6789-abcd-ef0123456789", "timestamp": "2026-12-02T10:00:00Z",
               "region": "north", "source": "s", "payload": {}}),
    (Roles(id=None, region=None, source=None, payload="", time_zone="UTC", only_source="download"),
     {"timestamp": "2026-12-02T10:00:00.5", "size": 3}),
    (Roles(id="/meta/id", time="/ts", source="/kind", region="/meta/site", payload="/body",
           time_unit="ms"),
     {"meta": {"id": "m-1", "site": "north"}, "ts": 1_795_000_000_000, "kind": "temp", "body": {}}),
    (Roles(id="/id", time="/at/when", region=None, time_zone="-03:00"),
     {"id": "i-1", "at": {"when": "2026-12-02T10:00:00"}, "source": "s", "payload": {}}),
    (Roles(id="/~1x", time="/t~0", source=None, only_source="one", time_unit="s"),
     {"/x": "x-1", "t~": 1_795_000_000.25, "region": "south", "payload": {}}),
]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**16), st.floats(),
                   st.sampled_from(["2026-12-02T10:00:00Z", "2026-12-02T10:00:00.5", "x",
                                    "AbCdEf01-2345-6789-abcd-ef0123456789", "north", ""]),
                   st.dictionaries(st.sampled_from(["id", "site", "when"]), st.text(max_size=3)))


@settings(max_examples=300, deadline=None)
@given(layout=st.sampled_from(LAYOUTS), data=st.data())
def test_a_packs_compiled_reading_of_an_event_is_its_roles_reading(
        layout: tuple[Roles, dict[str, Any]], data: st.DataObject) -> None:
    """The child reading ahead reads parsed events with a reader compiled from the roles: the
    same fields as asking the roles one by one, or the same refusal, for any layout and value."""
    from evtool.core.fields import event_fields, fields_reader

    roles, valid = layout
    event = json.loads(json.dumps(valid))
    for role in ("id", "time", "region", "source"):
        tokens = roles.tokens(role)
        change = data.draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
        if tokens is None or change == "keep":
            continue
        inner = event
        for token in tokens[:-1]:
            inner = inner[token]
        if change == "drop":
            del inner[tokens[-1]]
        else:
            inner[tokens[-1]] = data.draw(VALUES)

    def read(how: Any) -> Any:
        try:
            return how(event)
        except RoleError as exc:
            return str(exc)

    assert read(fields_reader(roles)) == read(lambda e: event_fields(e, roles))
