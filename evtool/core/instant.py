"""One rule for time, applied by every stage alike: RFC 3339 instants as integer microseconds.

An instant carries an offset (`Z` or ±hh:mm), has at most microsecond precision that matters
(longer fractions are cut), may be a leap second (`:60` is the first instant of the next
minute, as POSIX time counts it), and lies in the years 0001-9999 once moved to UTC, so that
every stage can write it back as a four-digit-year ISO time ending in `Z`.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone
from functools import lru_cache

MICROS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_US = timedelta(microseconds=1)
MIN_US = (datetime(1, 1, 1, tzinfo=timezone.utc) - EPOCH) // ONE_US
MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) - EPOCH) // ONE_US
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


class TimeError(ValueError):
    """A timestamp that is not an instant evtool can place."""


def instant_us(text: object) -> int:
    """Microseconds since the epoch of an RFC 3339 date-time with an offset; TimeError if not one."""
    at = _fast(text)
    if at is None:
        if type(text) is not str:
            raise TimeError(f"timestamp {text!r} is not a string")
        at = _slow(text)
    if not MIN_US <= at <= MAX_US:
        raise TimeError(f"timestamp {text!r} is outside the years 0001-9999 in UTC")
    return at


def _fast(text: object) -> int | None:
    """The common case without raising: the RFC 3339 shape checked by position (fromisoformat
    alone takes more: ',' fractions, '+hhmm', offsets with seconds, week dates); None sends
    everything else the slow way."""
    if not (type(text) is str and len(text) >= 20 and text[4] == "-" and text[7] == "-"
            and text[10] in "Tt " and text[13] == ":" and text[16] == ":" and text[19] in ".Zz+-"
            and (text[-1] in "Zz" or (text[-6] in "+-" and text[-3] == ":" and text[-2] in _TENS))
            and (text[19] != "." or text[20] in _DIGITS)):
        # fromisoformat alone would take '.Z', '.+05:30' and minutes past 59 in an offset
        return None
    try:
        since = _fromisoformat(text) - EPOCH
    except (ValueError, OverflowError):
        return None
    return (since.days * 86_400 + since.seconds) * MICROS + since.microseconds    # // ONE_US, sooner


if sys.version_info >= (3, 11):
    _fromisoformat = datetime.fromisoformat
else:
    def _fromisoformat(text: str) -> datetime:
        """Python 3.10's reads no 'Z': the same instant written +00:00 (else every such time
        took the regular expression's way, and aggregate parsed every line of lab3's events)."""
        return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)


_TENS, _DIGITS = frozenset("012345"), frozenset("0123456789")


def shaped_us(text: str) -> int | None:
    """instant_us of a timestamp whose RFC 3339 shape an expression has checked (lineshape's
    TIMESTAMP), so fromisoformat may read it straight; None for the slow cases."""
    try:
        since = _fromisoformat(text) - EPOCH
    except (ValueError, OverflowError):
        return None
    at = (since.days * 86_400 + since.seconds) * MICROS + since.microseconds
    return at if MIN_US <= at <= MAX_US else None


def _forms() -> tuple[tuple[frozenset[str], ...], ...]:
    """Places of the RFC 3339 layouts `_fast` takes by position (a fraction of 0-9 digits, 'Z'
    or an offset), so that instant_us reads any text of them by fromisoformat as shaped_us does."""
    digit, tens = frozenset("0123456789"), frozenset("012345")
    date = [*[digit] * 4, frozenset("-"), digit, digit, frozenset("-"), digit, digit, frozenset("Tt "),
            digit, digit, frozenset(":"), digit, digit, frozenset(":"), digit, digit]
    zones = ([frozenset("Zz")], [frozenset("+-"), digit, digit, frozenset(":"), tens, digit])
    fractions: list[list[frozenset[str]]] = [[], *([frozenset("."), *[digit] * n] for n in range(1, 10))]
    return tuple(tuple(date + fraction + zone) for fraction in fractions for zone in zones)


_FORMS = _forms()


def reads_shaped(places: tuple[frozenset[str], ...]) -> bool:
    """Whether every text whose places hold only these characters is a layout shaped_us may read
    (lineshape.places gives them for a pack's own expression of a time)."""
    return any(len(form) == len(places) and all(p <= f for p, f in zip(places, form, strict=True))
               for form in _FORMS)


@lru_cache(maxsize=4096)
def _repeated_us(text: str) -> int:
    return instant_us(text)


def bound_us(text: object) -> int:
    """instant_us for values that repeat: every metric of a window names the same two bounds."""
    return _repeated_us(text) if type(text) is str else instant_us(text)


def _slow(text: str) -> int:
    """The regular expression's verdict, and what fromisoformat refuses: 'Z' and odd fractions on
    older Pythons, leap seconds, dates that do not exist."""
    match = _RFC3339.match(text)
    if match is None:
        raise TimeError(f"timestamp {text!r} is not an RFC 3339 date-time with an offset")
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = match.groups()
    leap = second == "60"
    try:
        offset = timedelta(0) if zulu else timedelta(hours=int(oh), minutes=int(om))
        if int(oh or 0) > 23 or int(om or 0) > 59:
            raise ValueError("offset out of range")
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                          59 if leap else int(second), int((frac or "0")[:6].ljust(6, "0")),
                          tzinfo=timezone(-offset if sign == "-" else offset))
    except ValueError as exc:
        raise TimeError(f"timestamp {text!r} is not a valid date-time ({exc})") from None
    at = (moment - EPOCH) // ONE_US
    return at + (MICROS - at % MICROS if leap else 0)


def iso_us(at: int) -> str:
    """UTC ISO 8601 with a four-digit year, ending in Z; a fraction only when the instant has one."""
    moment = _NAIVE_EPOCH + timedelta(microseconds=at)
    # a naive time's isoformat: four-digit year, six-digit fraction only when there is one
    return (moment.isoformat().rstrip("0") if moment.microsecond else moment.isoformat()) + "Z"


_NAIVE_EPOCH = EPOCH.replace(tzinfo=None)


def is_instant(text: object) -> bool:
    """The `date-time` format of every schema evtool compiles: the same rule as the stages'."""
    at = _fast(text)
    if at is not None:
        return MIN_US <= at <= MAX_US
    try:
        instant_us(text)
    except TimeError:
        return False
    return True


def micros_of(seconds: float, what: str) -> int:
    """A duration option as whole microseconds (windows are exact); below 1 µs is refused."""
    us = round(seconds * MICROS)
    if us < 1:
        raise ValueError(f"{what} must be at least 1 µs")
    return us


def seconds_value(us: int) -> int | float:
    """A duration as it is written in records: 5 for 5 s, 0.1 for 100 ms."""
    return us // MICROS if us % MICROS == 0 else us / MICROS
