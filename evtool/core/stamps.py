"""gen's timestamps: the simulated clock's instant as text in one of the forms a pack accepts,
the text up to the fraction made once per second."""

from __future__ import annotations

from datetime import datetime, timezone

from evtool.core.instant import MICROS

# Ways to write an instant, finest first: gen uses the first one the pack's envelope accepts.
# Each is the digits of the fraction (none, milli or micro) and what follows them.
TIMESTAMP_FORMS: tuple[tuple[str, int, str], ...] = (
    ("micro+00:00", 6, "+00:00"),
    ("microZ", 6, "Z"),
    ("milliZ", 3, "Z"),
    ("secondZ", 0, "Z"),
    ("second+00:00", 0, "+00:00"),
)
# a pack that reads times without an offset in its time_zone: those forms come first
NAIVE_FORMS: tuple[tuple[str, int, str], ...] = (("micro", 6, ""), ("milli", 3, ""), ("second", 0, ""))
_D2 = [f"{i:02d}" for i in range(60)]
D3 = [f"{i:03d}" for i in range(1000)]      # a table lookup writes digits cheaper than format()


def iso_date(at: datetime) -> str:
    """YYYY-MM-DD with the year in four digits: strftime's %Y writes year 1 as "1" on glibc."""
    return at.date().isoformat()


def zone_offset_us(zone: str | None) -> int:
    """How far a time_zone's wall clock is ahead of UTC, in µs."""
    if zone is None or zone in ("UTC", "Z"):
        return 0
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * MICROS


class Stamps:
    """Instants (µs, UTC) as text in the form `use` chose, on a wall clock `shift_us` ahead of
    UTC. `head` is the text of the second [start, end) up to its fraction: a loop that writes
    many instants may test and read these itself, calling `enter` for a new second."""

    def __init__(self, shift_us: int) -> None:
        self.shift = shift_us
        self.start = self.end = 0
        self.digits, self.tail = TIMESTAMP_FORMS[0][1:]
        self.head = self._date = ""
        self._day: int | None = None

    def use(self, digits: int, tail: str) -> None:
        self.digits, self.tail, self.end = digits, tail, self.start

    def enter(self, at: int) -> None:
        """The second of `at` (on the wall clock): its head; the date only when it changes."""
        sec = at // MICROS
        self.start, self.end = sec * MICROS, (sec + 1) * MICROS
        day, rest = divmod(sec, 86400)
        if day != self._day:
            self._day = day
            self._date = iso_date(datetime.fromtimestamp(day * 86400, tz=timezone.utc)) + "T"
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        dot = "." if self.digits else ""
        self.head = f"{self._date}{_D2[hour]}:{_D2[minute]}:{_D2[second]}{dot}"

    def __call__(self, now_us: int) -> str:
        at = now_us + self.shift
        if not self.start <= at < self.end:
            self.enter(at)
        micro, digits = at - self.start, self.digits
        if digits == 6:
            return f"{self.head}{D3[micro // 1000]}{D3[micro % 1000]}{self.tail}"
        if digits == 3:
            return f"{self.head}{D3[micro // 1000]}{self.tail}"
        return self.head + self.tail
