"""One time rule, strict RFC 3339, on every path: the schema's format, the line expression, the
quick reading and the slow one all refuse what RFC 3339 refuses."""

from __future__ import annotations

import sys

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.instant import TimeError, _fast, _slow, instant_us, is_instant, shaped_us
from tests.conftest import gen_lines, records, run

NOT_RFC3339 = ["2026-11-26T10:00:00.Z", "2026-11-26T10:00:00.+05:30", "2026-11-26T10:00:00+05:99",
               "2026-11-26T10:00:00-00:60", "2026-11-26T10:00:00+24:00"]


@pytest.mark.parametrize("stamp", NOT_RFC3339)
def test_no_stage_takes_a_time_rfc3339_refuses(stamp: str) -> None:
    event = orjson.loads(gen_lines(1, 5).splitlines()[0])
    line = orjson.dumps({**event, "timestamp": stamp}) + b"\n"
    assert not is_instant(stamp) and _fast(stamp) is None
    with pytest.raises(TimeError):
        instant_us(stamp)
    for stage in (["validate"], ["aggregate", "--no-alerts"]):
        out = records(run(stage, stdin=line).stdout)
        assert [r.get("reason") for r in out] == ["schema"], (stage, out)


DIGITS = st.text("0123456789", min_size=2, max_size=2)


@given(st.sampled_from("Zz+-"), DIGITS, DIGITS, st.sampled_from(["", ".", ".5", ".123456789"]))
def test_the_quick_reading_never_takes_what_the_slow_one_refuses(end: str, hh: str, mm: str,
                                                                 frac: str) -> None:
    stamp = f"2026-11-26T10:00:00{frac}" + (end if end in "Zz" else f"{end}{hh}:{mm}")
    try:
        slow: int | None = _slow(stamp)                   # the strict expression, the reference
    except TimeError:
        slow = None
    assert _fast(stamp) in (None, slow)
    assert is_instant(stamp) == (slow is not None)


@pytest.mark.parametrize("stamp", ["2026-11-26T10:00:00Z", "2026-11-26t10:00:00.123456Z",
                                   "2026-11-26 10:00:00.123+00:00", "2026-11-26T10:00:00-03:00"])
def test_the_usual_times_are_read_the_quick_way_on_every_python(stamp: str) -> None:
    """lab3's 'Z' times among them: Python 3.10's fromisoformat takes no 'Z', and its lines were
    parsed one by one where an expression reads the others."""
    assert _fast(stamp) == shaped_us(stamp) == _slow(stamp)


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_a_time_in_a_layout_read_as_shaped_is_the_instant_the_rule_reads(data: st.DataObject) -> None:
    """A pack whose time pattern fits these layouts (lab3's) has its times read by shaped_us
    alone: any text of them, real date or not, is either that instant or left to the rule."""
    from evtool.core.instant import _FORMS

    form = data.draw(st.sampled_from(_FORMS))
    zulu = len(form[-1]) == 2
    fraction = len(form) - (20 if zulu else 25)
    zone = "Z" if zulu else data.draw(st.sampled_from(["+23:59", "-00:00", "+05:30"]))
    real = list(f"1999-12-31T23:59:59{'.' + '9' * (fraction - 1) if fraction else ''}{zone}")
    for at in data.draw(st.lists(st.integers(0, len(form) - 1), max_size=3)):
        real[at] = data.draw(st.sampled_from(sorted(form[at])))     # near real times, mostly
    stamp = "".join(real)
    assert all(c in held for c, held in zip(stamp, form, strict=True))
    try:
        expected: int | None = instant_us(stamp)
    except TimeError:
        expected = None
    assert shaped_us(stamp) in (None, expected)


def test_every_layout_read_as_shaped_reads_a_real_time() -> None:
    """Each layout is taken for what it is meant for: a real time with 0-9 fraction digits, 'Z'
    or an offset, read by shaped_us as the rule reads it."""
    from evtool.core.instant import _FORMS, reads_shaped

    stamps = []
    for n in range(10):
        for zone in ("Z", "+05:30"):
            stamp = f"2026-12-06T10:20:30{'.' + '5' * n if n else ''}{zone}"
            stamps.append(stamp)
            assert reads_shaped(tuple(frozenset(c) for c in stamp)), stamp
            # Python 3.10's fromisoformat takes 3 or 6 digits of a fraction: others go the slow way
            quick = sys.version_info >= (3, 11) or n in (0, 3, 6)
            assert shaped_us(stamp) == (_slow(stamp) if quick else None), stamp
    assert not reads_shaped(tuple(frozenset(c) for c in "2026-12-06T10:20:30+0530"))
    assert {len(form) for form in _FORMS} == {len(stamp) for stamp in stamps}
