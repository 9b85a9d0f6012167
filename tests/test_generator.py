"""The generator's options, each checked on what comes out."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any
from unittest.mock import patch

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.generator import GenConfig, Generator
from evtool.core.stats import Stats
from evtool.core.validation import ValidateStage
from evtool.schemas import load_pack
from tests.conftest import checker, gen_lines, pack_validator, run


def dumped(build: Callable[[], Any], _time: object) -> str:
    """A line plan's text the slow way: the dict its builder makes (which reads the clock itself)."""
    return orjson.dumps(build()).decode()

PACK = load_pack()
REGIONS, SOURCES = PACK.regions, PACK.sources

T0_US = 1_795_000_000 * 1_000_000


def lines(**kw) -> list[bytes]:
    return [line for _, line, _ in Generator(GenConfig(start_us=T0_US, pack=kw.pop("pack", PACK),
                                                seed=kw.pop("seed", 1), **kw))]


def times(events: list[dict]) -> list[float]:
    return [datetime.fromisoformat(e["timestamp"]).timestamp() for e in events]


def validate(data: list[bytes]) -> tuple[list[bytes], Stats]:
    stage = ValidateStage(pack_validator(), checker(), Stats(), 1 << 20)
    out: list[bytes] = []
    stage.process(data, out, out)
    return out, stage.stats


def test_same_seed_and_start_give_byte_identical_output() -> None:
    args = ("--duplicates", "0.1", "--out-of-order", "0.1", "--invalid", "0.1",
            "--burst-probability", "0.01")
    assert gen_lines(3000, 7, *args) == gen_lines(3000, 7, *args)
    assert gen_lines(3000, 7, *args) != gen_lines(3000, 8, *args)


def test_count_is_exact_and_every_plain_event_is_valid() -> None:
    out = lines(count=5000)
    assert len(out) == 5000
    _, stats = validate(out)
    assert stats.events == 5000 and not stats.dead
    events = [orjson.loads(x) for x in out]
    assert {e["source"] for e in events} == set(SOURCES)
    assert len({e["region"] for e in events}) == len(REGIONS)
    assert len({e["event_id"] for e in events}) == 5000


def test_rate_sets_event_time_spacing() -> None:
    ts = times([orjson.loads(x) for x in lines(count=20000, rate=100)])
    span = ts[-1] - ts[0]
    assert 180 < span < 220                          # 20,000 events at 100/s ~ 200 s
    assert ts == sorted(ts)


def test_duplicates_are_exact_re_emissions() -> None:
    out = lines(count=10000, duplicates=0.1)
    counts = Counter(out)
    repeats = sum(n - 1 for n in counts.values())
    assert 800 < repeats < 1200
    ids = Counter(orjson.loads(x)["event_id"] for x in out)
    assert sum(n - 1 for n in ids.values()) == repeats  # same id only ever with the same bytes


def test_out_of_order_is_bounded_by_max_delay() -> None:
    events = [orjson.loads(x) for x in lines(count=10000, out_of_order=0.3, max_delay=2)]
    ts = times(events)
    newest, worst, behind = ts[0], 0.0, 0
    for t in ts:
        if t < newest:
            behind += 1
            worst = max(worst, newest - t)
        newest = max(newest, t)
    assert behind > 1000
    assert worst <= 2.0 + 1e-6


def test_invalid_fraction_and_every_rule_appears() -> None:
    out = lines(count=20000, invalid=0.2)
    _, stats = validate(out)
    assert 3600 < sum(stats.dead.values()) < 4400
    assert {"json", "schema", "encoding"} <= set(stats.dead)


def test_bursts_share_region_and_correlation_and_are_close_together() -> None:
    events = [orjson.loads(x) for x in lines(count=3000, burst_probability=0.01, burst_size=40)]
    by_corr = Counter(e["correlation_id"] for e in events)
    bursts = [c for c, n in by_corr.items() if n == 40]
    assert bursts
    for corr in bursts:
        members = [e for e in events if e["correlation_id"] == corr]
        assert {e["source"] for e in members} == {"security.incident"}
        assert len({e["region"] for e in members}) == 1
        ts = times(members)
        assert ts[-1] - ts[0] < 40 / 10                  # much denser than the 10/s base rate


def test_truth_agrees_with_aggregate_under_duplicates_and_disorder(tmp_path) -> None:
    from tests.conftest import pipeline

    truth = tmp_path / "truth.ndjson"
    args = ["gen", "--count", "20000", "--seed", "8", "--fast", "--duplicates", "0.05",
            "--out-of-order", "0.2", "--max-delay", "3", "--invalid", "0.02", "--truth", str(truth),
            "--window", "10", "--lateness", "1"]
    out, _ = pipeline(args, ["validate"], ["aggregate", "--window", "10", "--lateness", "1"])
    got = [(w["window_start"], w["total"], w["by_region_source"])
           for w in map(orjson.loads, out.splitlines()) if w.get("kind") == "window"]
    want = [(w["window_start"], w["total"], w["by_region_source"])
            for w in map(orjson.loads, truth.read_bytes().splitlines())]
    assert got == want and len(want) > 100
    late = sum(1 for r in map(orjson.loads, out.splitlines()) if r.get("reason") == "late")
    assert late > 0                 # lateness 1 < max delay 3: some events are late, in both


def test_lines_written_from_the_plan_equal_orjson_of_the_dicts() -> None:
    """gen writes fresh events straight from the plan as JSON text; the bytes and the draws must
    be those of building the dict and dumping it, for every pack (optional fields, nested
    objects, if/then, bursts, duplicates, invalid lines, disorder included)."""
    from itertools import islice

    for name in ("evtool", "lab3"):
        made = []
        for via_dicts in (False, True):
            cfg = GenConfig(start_us=1_795_000_000_000_000, pack=load_pack(name), seed=11,
                            burst_probability=0.01, duplicates=0.02, invalid=0.02, out_of_order=0.1,
                            max_delay=3)
            gen = Generator(cfg)
            if via_dicts:
                build = gen._build
                gen._line = {s: functools.partial(dumped, build[s]) for s in gen._line}
            made.append([line for _, line, _ in islice(gen, 20_000)])
        assert made[0] == made[1], name


def test_timestamps_take_the_first_form_the_envelope_accepts_and_cross_midnight() -> None:
    """Each pattern admits only one way of writing an instant: gen must find it, and write the
    emission instant in it exactly, across a change of day."""
    import copy
    import re
    from dataclasses import replace

    from evtool.core.instant import MICROS

    start = int(datetime.fromisoformat("2026-12-31T23:59:57+00:00").timestamp()) * MICROS
    forms = {r"\.\d{6}\+00:00": lambda micro: f".{micro:06d}+00:00",
             r"\.\d{6}Z": lambda micro: f".{micro:06d}Z",
             r"\.\d{3}Z": lambda micro: f".{micro // 1000:03d}Z",
             r"Z": lambda micro: "Z"}
    for tail, write in forms.items():
        envelope = copy.deepcopy(PACK.envelope)
        pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}" + tail + "$"
        envelope["properties"]["timestamp"]["pattern"] = pattern
        gen = Generator(GenConfig(start_us=start, pack=replace(PACK, envelope=envelope), seed=3,
                                  count=100, rate=20))
        made = [(at, orjson.loads(line)["timestamp"]) for at, line, _ in gen]
        assert made[0][1].startswith("2026-12-31T23:59:5") and made[-1][1].startswith("2027-01-01T00:00:0")
        for at, text in made:
            sec, micro = divmod(at, MICROS)
            second = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            assert text == second + write(micro) and re.fullmatch(pattern, text), (tail, text)


@pytest.mark.parametrize("pack", ["evtool", "lab3", "cloudevents", "examples/packs/weather",
                                  "examples/packs/downloads"])
def test_gen_writes_each_line_as_orjson_would_write_its_event(pack: str) -> None:
    """gen --fast writes text straight from its makers (strings unescaped where a pattern or the
    clock made them, floats by repr): each line must be the JSON orjson writes for its value."""
    made = run(["gen", "--pack", pack, "--count", "3000", "--seed", "5", "--fast", "-q"]).stdout
    lines = made.splitlines()
    assert len(lines) == 3000
    assert all(orjson.dumps(orjson.loads(line)) == line for line in lines)


@pytest.mark.parametrize("pack", ["evtool", "lab3", "cloudevents"])
def test_the_one_call_path_makes_what_the_general_path_makes(pack: str) -> None:
    """gen writes each event in one call when nothing but the source varies (even weights by
    index, lab3's uneven ones by bisection): the same draws, so the same events, as the general
    path takes, duplicates, disorder and invalid events mixed in."""
    cfg = GenConfig(start_us=1_795_000_000_000_000, pack=load_pack(pack), count=5000, seed=5,
                    duplicates=0.02, out_of_order=0.05, invalid=0.01)
    one_call = Generator(cfg)
    assert one_call._plain() is not None
    general = Generator(cfg)
    general._plain = lambda: None  # type: ignore[method-assign]
    assert [line for _, line, _ in one_call] == [line for _, line, _ in general]


@pytest.mark.parametrize("pack", ["evtool", "lab3", "cloudevents", "examples/packs/weather",
                                  "examples/packs/downloads"])
@pytest.mark.parametrize("faults", [False, True])
def test_lines_alone_are_the_lines_iterating_makes(pack: str, faults: bool) -> None:
    """gen --fast takes the lines alone: with no faults asked for, from a loop of its own that
    must draw exactly what the general loop draws."""
    cfg = GenConfig(start_us=1_795_000_000_000_000, pack=load_pack(pack), count=3000, seed=5,
                    duplicates=0.02 * faults, out_of_order=0.05 * faults, invalid=0.01 * faults)
    want = [line for _, line, _ in Generator(cfg)]
    # with no faults, iterating is never asked: its lines would be missing
    with patch.object(Generator, "__iter__", lambda _self: iter(())) if not faults else nullcontext():
        got = list(Generator(cfg).lines())
    assert got == want and len(got) == 3000


def test_numbers_are_drawn_on_a_grid_of_four_places_within_their_bounds() -> None:
    """A bounded number is a step of 1e-4 inside its bounds (ends included, a bound with more
    places rounded inwards), written as orjson writes it."""
    from random import Random

    from evtool.core.builders import Grid, line_builder
    from evtool.core.plan import Planner

    rng = Random(3)
    planner = Planner({}, rng, None, "test: ", lambda _schema: print)  # type: ignore[arg-type]
    for low, high in ((-90.0, 90.0), (0.1, 0.30005), (2.5, 2.5), (-1e-4, 0.0), (0.3, 0.7),
                      (1.0001, 1.0003), (-0.00015, 0.00025), (0.57, 1.13)):
        make = planner.value({"type": "number", "minimum": low, "maximum": high})
        assert isinstance(make, Grid)
        values = [make() for _ in range(3000)]
        assert low <= min(values) and max(values) <= high
        assert all(round(v, 4) == v for v in values)
        first, last = make.first, make.first + make.span - 1        # the grid's ends, tight
        assert (first - 1) / 10_000 < low <= first / 10_000 and last / 10_000 <= high < (last + 1) / 10_000
        line = line_builder([("x", make, True)], rng.random, lambda _make: False)
        assert all(orjson.dumps(orjson.loads(text)) == text.encode() for text in (line() for _ in range(500)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(-10**9, 10**9), st.integers(1, 10**6))
def test_a_power_of_ten_step_draws_the_numbers_rounding_drew(places: int, first: int, span: int) -> None:
    """multipleOf 0.1 .. 0.0001 is drawn on a grid, inlined in the line plan: each number must be
    the one `round(n * step, places)` made before, so a seed makes the same events as it did."""
    from random import Random

    from evtool.core.builders import Grid
    from evtool.core.plan import Planner

    step = 1 / 10 ** places
    low, high = first / 10 ** places, (first + span) / 10 ** places
    planner = Planner({}, Random(1), None, "test: ", lambda _schema: print)  # type: ignore[arg-type]
    make = planner.value({"type": "number", "minimum": low, "maximum": high, "multipleOf": step})
    assert isinstance(make, Grid)
    for n in (make.first, make.first + make.span // 2, make.first + make.span - 1):
        assert n / 10 ** places == round(n * step, places)
    assert all(low <= v <= high and round(v, places) == v for v in (make() for _ in range(200)))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([10, 100, 1000, 10_000]), st.integers(-(10**15) + 10**4, 10**15 - 1))
def test_a_grid_number_is_written_from_its_integer_as_repr_writes_it(scale: int, n: int) -> None:
    """The line plan writes k / scale from k and a table of fractions: the text must be repr's
    (which is orjson's), every fraction of each scale and integers up to 15 digits."""
    from random import Random

    from evtool.core.builders import Grid, line_builder

    draws = Random(0)
    for first in (n, -abs(n) % scale, -(abs(n) % scale), n - n % scale):
        grid = Grid(first, 1, scale, draws.random)     # one step: the draw is `first`
        assert "!r" not in grid.text("table")            # written from the integer
        line = line_builder([("x", grid, True)], draws.random, lambda _make: False)
        assert line() == f'{{"x":{first / scale!r}}}' == orjson.dumps({"x": first / scale}).decode()
    beyond = Grid(10**15 + n % 7, 1, scale, draws.random)       # 16 digits: repr's own way
    assert "!r" in beyond.text("table")
    assert line_builder([("x", beyond, True)], draws.random, lambda _make: False)() == \
        orjson.dumps({"x": beyond()}).decode()


def test_every_fraction_of_a_grid_is_repr_s() -> None:
    from evtool.core.builders import fractions

    for scale in (10, 100, 1000, 10_000):
        table = fractions(scale)
        assert len(table) == scale
        assert all(f"7{text}" == repr((7 * scale + k) / scale) and
                   f"-3{text}" == repr((-3 * scale - k) / scale) for k, text in enumerate(table))


# a time each way gen writes one: µs with an offset, whole seconds, ms on a shifted wall clock,
# epoch ms; the text must say the clock's instant (an independent reading: fromisoformat)
CLOCK_FORMS = {
    "micro": ({"type": "string", "format": "date-time"}, {}),
    "second": ({"type": "string", "pattern": "^[0-9-]{10}T[0-9:]{8}Z$"}, {}),
    "milli, -03:00": ({"type": "string", "pattern": "^[0-9-]{10}T[0-9:]{8}[.][0-9]{3}$"},
                      {"time_zone": "-03:00"}),
    "epoch ms": ({"type": "integer"}, {"time_unit": "ms"}),
}


@pytest.mark.parametrize("form", CLOCK_FORMS)
def test_every_form_of_time_says_the_clock_whichever_loop_writes_it(form: str, tmp_path) -> None:
    from tests.test_packs import write_pack

    schema, rules = CLOCK_FORMS[form]
    folder = write_pack(tmp_path, {
        "pack.json": {"name": "clock", "sources": {"tick": 1},
                      "fields": {"id": "/id", "time": "/at", "source": "/source", "payload": "/body",
                                 "region": None},
                      **rules},
        "envelope.json": {"type": "object", "required": ["id", "at", "source", "body"],
                          "properties": {"id": {"type": "string", "format": "uuid"}, "at": schema,
                                         "source": {"type": "string"}, "body": {"type": "object"}}},
        "payloads/tick.json": {"type": "object", "required": ["n"],
                               "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}},
    })
    cfg = GenConfig(start_us=1_795_000_000_123_456, pack=load_pack(str(folder)), count=2000, seed=4, rate=300)
    with patch.object(Generator, "__iter__", lambda _self: iter(())):
        alone = list(Generator(cfg).lines())
    iterated = Generator(cfg)
    made = [(at, line) for at, line, _ in iterated]
    assert alone == [line for _, line in made]
    shift = -3 * 3600 * 10**6 if "time_zone" in rules else 0
    for at_us, line in made:
        value = orjson.loads(line)["at"]
        if form == "epoch ms":
            assert value == at_us // 1000
            continue
        wall = datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=timezone.utc)
        said = (wall - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() * 10**6 - shift
        cut = {"micro": 1, "second": 10**6, "milli, -03:00": 1000, "epoch ms": 1}[form]
        assert round(said) == (at_us // cut) * cut, (form, value, at_us)


@pytest.mark.parametrize("pack", ["evtool", "lab3", "cloudevents"])
def test_a_nested_objects_plan_joins_the_events_f_string(pack: str) -> None:
    """A payload written by a line plan of its own is spliced into the event's: no call per
    event (the bytes are checked against orjson above)."""
    gen = Generator(GenConfig(start_us=0, pack=load_pack(pack), count=1, seed=1))
    spliced = 0
    for line in gen._line.values():
        names = line.__code__.co_names
        assert not [n for n in names if hasattr(line.__globals__.get(n), "parts")], pack
        spliced += len({n.split("_")[0] for n in names if re.fullmatch(r"p[0-9]+_[cm][0-9]+", n)}) > 1
    assert spliced, f"no plan of {pack} writes a nested object inline"


def test_the_if_then_the_line_expression_mirrors_is_written_by_the_line_plan_too() -> None:
    """evtool's survey payload (if victimized is false, so is reported_to_police) was built as a
    dict and dumped, a third of its events; the line plan now draws the same and writes it (the
    bytes and draws are held to the dicts' above)."""
    gen = Generator(GenConfig(start_us=0, pack=load_pack("evtool"), count=1, seed=1))
    assert len(gen._line) == 3
    assert all("_json" not in line.__code__.co_names for line in gen._line.values())


def test_a_packs_keys_and_constants_are_text_in_the_line_plan_never_code(tmp_path) -> None:
    """Names and constants that would close an f-string, open a replacement field or escape: gen
    writes them as JSON text, and runs none of them."""
    from tests.test_packs import write_pack

    marker = tmp_path / "ran"
    hostile = [f"'}}{{__import__('pathlib').Path({str(marker)!r}).touch()}}{{'", '{x}', "a\\'b", '"\n}}']
    props = {key: {"const": key} for key in hostile}
    folder = write_pack(tmp_path / "pack", {
        "pack.json": {"name": "hostile", "sources": {"s": 1},
                      "fields": {"id": "/id", "time": "/at", "source": "/source", "payload": "/body",
                                 "region": None}},
        "envelope.json": {"type": "object", "required": ["id", "at", "source", "body", *hostile],
                          "properties": {"id": {"type": "string", "format": "uuid"},
                                         "at": {"type": "string", "format": "date-time"},
                                         "source": {"type": "string"}, "body": {"type": "object"},
                                         **props}},
        "payloads/s.json": {"type": "object", "required": hostile, "properties": props},
    })
    cfg = GenConfig(start_us=1_795_000_000_000_000, pack=load_pack(str(folder)), count=50, seed=2)
    with patch.object(Generator, "__iter__", lambda _self: iter(())):
        made = [orjson.loads(line) for line in Generator(cfg).lines()]
    assert not marker.exists()
    assert all({k: e[k] for k in hostile} == {k: k for k in hostile} == e["body"] for e in made)


@pytest.mark.parametrize("pack", ["evtool", "lab3", "cloudevents", "examples/packs/weather"])
@pytest.mark.parametrize("start", ["0001-01-01T00:00:00Z", "0999-12-31T23:59:58Z"])
def test_years_before_1000_are_written_in_four_digits(pack: str, start: str) -> None:
    """strftime's %Y writes year 1 as "1" on glibc: gen refused to start before the year 1000
    ("gen cannot make events this pack accepts"), its clock's text being no date-time."""
    made = run(["gen", "--pack", pack, "--count", "300", "--seed", "3", "--start", start, "--fast", "-q"])
    assert made.returncode == 0, made.stderr
    judged = run(["validate", "--pack", pack, "-q"], stdin=made.stdout).stdout.splitlines()
    assert len(judged) == 300 and not [j for j in judged if b'"deadletter"' in j]
    years = {m.group(1) for m in re.finditer(rb'"(\d{4})-\d\d-\d\d', made.stdout)}
    assert years <= {start[:4].encode(), b"%04d" % (int(start[:4]) + 1)} and start[:4].encode() in years
