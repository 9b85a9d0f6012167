"""The whole-line expression decides date-times and number bounds alone (no check per match), so
each piece must say exactly what the schemas' rule says: never more, and no less where it is meant
to fire (every date-time of the years 0002-9998 without a leap second; whole bounds)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.instant import is_instant
from evtool.core.lineshape import TIMESTAMP, Shape

STAMP = re.compile(TIMESTAMP)
YEARS = [*range(0, 12), *range(396, 405), *range(1896, 1905), *range(1996, 2005), *range(2096, 2105),
         *range(9990, 10000)]
TIMES = ["T00:00:00Z", "T23:59:59.5+23:59", "t12:00:00-05:00", " 00:00:00.123456789z", "T24:00:00Z",
         "T23:60:00Z", "T23:59:60Z", "T00:00:00+24:00", "T00:00:00-00:60", "T00:00:00.Z", "T1:00:00Z"]


@pytest.mark.parametrize("year", YEARS)
def test_the_date_time_expression_is_the_date_time_rule(year: int) -> None:
    taken, refused = 0, 0
    for month in range(14):
        for day in range(33):
            for end in TIMES:
                stamp = f"{year:04d}-{month:02d}-{day:02d}{end}"
                matched, valid = STAMP.fullmatch(stamp) is not None, is_instant(stamp)
                assert valid or not matched, f"the expression takes {stamp}, the rule refuses it"
                if 1 < year < 9999 and ":60" not in stamp:
                    assert matched == valid, f"the expression leaves {stamp} to the slow path"
                taken += matched
                refused += not valid
    assert refused
    assert taken or year in (0, 1, 9999)


@settings(max_examples=3000, deadline=None)
@given(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,10})?"
                     r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"))
def test_no_date_time_the_expression_takes_is_refused(stamp: str) -> None:
    assert STAMP.fullmatch(stamp) is None or is_instant(stamp)


BOUNDS = [(0, 5, True), (-90, 90, False), (-180, 180, False), (-90, 60, False), (1, 120, True),
          (-10, -2, True), (-10, -2, False), (3, 3, False), (0, 0, True), (-5, 7, True)]


def _inside(text: str, lo: int, hi: int, integer: bool) -> bool:
    """A JSON number of the type, written as orjson writes one, within [lo, hi]."""
    grammar = r"-?(0|[1-9][0-9]*)" if integer else r"-?(0|[1-9][0-9]*)(\.[0-9]+)?"
    return re.fullmatch(grammar, text) is not None and lo <= Decimal(text) <= hi


@pytest.mark.parametrize(("lo", "hi", "integer"), BOUNDS)
def test_bounds_in_the_expression_are_the_bounds(lo: int, hi: int, integer: bool) -> None:
    shape = Shape()
    rule = re.compile(shape.number(integer, {"minimum": lo, "maximum": hi}, "n"))
    assert not shape.numbers, "whole bounds are decided by the expression"
    texts = {str(v) for v in range(lo - 12, hi + 13)} | {"-0", "00", "01", "1.", "+1", "1e1"}
    if not integer:
        texts |= {f"{v}.{f}" for v in range(lo - 3, hi + 4) for f in ("0", "5", "00", "999", "0001")}
        texts |= {f"-{abs(v)}.{f}" for v in range(lo - 3, 4) for f in ("0", "25")}
    fired = 0
    for text in texts:
        matched = rule.fullmatch(text) is not None
        inside = _inside(text, lo, hi, integer)
        assert not matched or inside, f"{text} taken for [{lo}, {hi}]"
        if inside and not text.startswith("-0"):
            assert matched, f"{text} inside [{lo}, {hi}] left to the slow path"
        fired += matched
    assert fired


@pytest.mark.parametrize("rules", [{"minimum": 0.5, "maximum": 2}, {"exclusiveMinimum": 0},
                                   {"minimum": 3}, {"maximum": 4}])
def test_other_bounds_are_checked_on_a_match(rules: dict[str, float]) -> None:
    shape = Shape()
    shape.number(False, rules, "n")
    assert shape.numbers == [("n0", False, tuple(rules.items()))]


ATOMS = st.sampled_from(["[0-9]", "[a-f]", "[89ab]", "[A-Za-z0-9:_/@-]", "[a-]", "[A-z]", "4", "-", ":",
                         "T", "Z", "\\."])
QUANTIFIERS = st.sampled_from(["", "", "{1}", "{3}", "{12}", "+", "*", "?", "{2,4}", "{2,}"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(ATOMS, QUANTIFIERS), min_size=1, max_size=6), st.data())
def test_the_places_of_a_simple_expression_are_what_it_matches(atoms: list[tuple[str, str]],
                                                               data: st.DataObject) -> None:
    """A pack's id or time spelled as fixed places (lab3's) is read without a second look at it:
    what `places` says each place holds must be exactly what the expression itself takes there."""
    from evtool.core.lineshape import places

    text = "".join(a + q for a, q in atoms)
    found = places(text)
    fixed = all(q in ("", "{1}", "{3}", "{12}") for _, q in atoms)
    assert (found is not None) == (fixed and sum(int(q.strip("{}") or 1) for _, q in atoms) <= 64)
    if found is None:
        return
    pattern = re.compile(text)
    chars = [data.draw(st.sampled_from(sorted(held))) for held in found]
    assert pattern.fullmatch("".join(chars))
    at = data.draw(st.integers(0, len(found) - 1))
    other = data.draw(st.sampled_from([chr(c) for c in range(32, 127) if chr(c) not in found[at]]
                                      or ["\u00e9"]))
    assert not pattern.fullmatch("".join([*chars[:at], other, *chars[at + 1:]]))


def test_a_simple_pattern_re_refuses_has_no_places() -> None:
    """A hostile pack's id pattern with a backwards range is no reason to crash a stage."""
    from evtool.core.lineshape import places

    assert places("[z-a]{8}") is None and places("[a-f]{8}") is not None
