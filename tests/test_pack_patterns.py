"""A pack's patterns cannot hang a stage: RE2 runs them in time linear in the value, and a
pattern RE2 cannot run (backreferences, lookaround) is refused at load, named."""

from __future__ import annotations

import copy
import time

import orjson
import pytest

from evtool.core.patterns import linear
from tests.conftest import gen_lines, records, run
from tests.test_packs import USER_PACK, write_pack


def pack_with(tmp, pattern: str):
    files = copy.deepcopy(USER_PACK)
    files["payloads/weather.reading.json"]["properties"]["station"]["pattern"] = pattern
    return write_pack(tmp / "pack", files)


def test_a_backtracking_pattern_over_ten_thousand_crafted_values_takes_no_time(tmp) -> None:
    pack = pack_with(tmp, "^(a+)+$")
    events = [orjson.loads(line) for line in gen_lines(1, 2).splitlines()]
    base = {**events[0], "region": "harbour", "source": "weather.reading",
            "payload": {"station": "", "reading": {"celsius": 1, "at": "2026-11-26T00:00:00Z"},
                        "tags": ["rain"]}}
    lines = []
    for n in range(10_000):
        value = "a" * (30 + n % 20) + "!"                 # the worst case for a backtracker
        lines.append(orjson.dumps({**base, "payload": {**base["payload"], "station": value}}))
    started = time.monotonic()
    result = run(["validate", "--pack", str(pack), "-q"], stdin=b"\n".join(lines) + b"\n", timeout=60)
    assert time.monotonic() - started < 5, "a pattern made validate backtrack"
    out = records(result.stdout)
    assert result.returncode == 0 and len(out) == 10_000
    assert {r["reason"] for r in out} == {"schema"}


@pytest.mark.parametrize("pattern", [r"^(a)\1$", r"^(?=a)a$", r"^(?!b)a$", r"^(?<=a)b$"])
def test_a_pattern_re2_cannot_run_is_refused_at_load_by_name(tmp, pattern: str) -> None:
    pack = pack_with(tmp, pattern)
    for stage in (["validate"], ["gen", "--count", "1"]):
        result = run([*stage, "--pack", str(pack)], stdin=b"")
        assert result.returncode == 2, (stage, result.stderr)
        assert b"RE2" in result.stderr and b"weather.reading" in result.stderr
        assert b"Traceback" not in result.stderr


def test_ecma_code_point_escapes_mean_what_they_say() -> None:
    assert linear(r"^caf\u00e9$").search("café") is not None
    assert linear(r"^\d+$").search("١٢٣") is None          # ECMA's \d is ASCII, as RE2's


def test_a_pattern_runs_on_re_only_where_re_cannot_backtrack_for_long() -> None:
    from evtool.core.patterns import backtracks_little

    quick = [r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", r"^1\.[0-9]+$",
             r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$", r"^[A-Z]{2}$"]
    risky = [r"^(a+)+$", r"^a*a*b$", r"a+b", r"^(a|a)+$", r"^(a?){30}a{30}$", r"^(a|ab){9}$"]
    assert all(backtracks_little(p) for p in quick)          # the shipped packs' own: fast on re
    assert not any(backtracks_little(p) for p in risky)
    for pattern, value in [(r"^(a?){30}a{30}$", "a" * 30), (r"^a*a*b$", "a" * 5000),
                           (r"^[a-z]*[0-9]$", "a" * 1_000_000)]:
        started = time.monotonic()
        linear(pattern).search(value)
        assert time.monotonic() - started < 1, pattern


def _named(plan):
    """What a line plan names, and what the plans it calls name."""
    for name in plan.__code__.co_names:
        named = plan.__globals__.get(name)
        yield named
        if getattr(named, "__name__", "") == "line":
            yield from _named(named)


@pytest.mark.parametrize(("pattern", "inline"), [
    ("^x'}{[0-9]{4}$", True),               # the pack's text beside a run of digits, 0-padded
    ("^[1-9][0-9]{2}$", True),              # a number and nothing else
    ("^ST-[A-Z]{2}[0-9]{3}$", False),       # letters drawn one by one: a call
])
def test_a_pattern_of_text_and_numbers_is_written_by_the_line_plan_itself(tmp, pattern: str,
                                                                          inline: bool) -> None:
    """The same draws and bytes as building the dict and dumping it, with no call to the
    pattern's maker where its strings are text and numbers; the pack's text is never code."""
    import functools
    import re

    from evtool.core.generator import GenConfig, Generator
    from evtool.schemas import load_pack
    from tests.test_generator import dumped

    made, pack = [], load_pack(str(pack_with(tmp, pattern)))
    for via_dicts in (False, True):
        gen = Generator(GenConfig(start_us=1_795_000_000_000_000, pack=pack, seed=7, count=3000))
        called = [m for m in _named(gen._line["weather.reading"])
                  if getattr(m, "__name__", "") == "seq" or "regexgen" in str(getattr(m, "__module__", ""))
                  or "regexgen" in type(m).__module__]
        assert bool(called) is not inline
        if via_dicts:
            gen._line = {s: functools.partial(dumped, gen._build[s]) for s in gen._line}
        made.append([line for _, line, _ in gen])
    assert made[0] == made[1]
    stations = [orjson.loads(line)["payload"]["station"] for line in made[0]
                if b"weather.reading" in line]
    assert len(stations) > 1000 and all(re.fullmatch(pattern.strip("^$"), s) for s in stations)
    assert len(set(stations)) > 10
