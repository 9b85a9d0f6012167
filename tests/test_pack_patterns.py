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
