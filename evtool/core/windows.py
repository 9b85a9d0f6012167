"""Event-time tumbling windows aligned to the epoch, closed by a watermark; all in integer µs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from evtool.core.instant import MAX_US, MIN_US


def placeable(size: int) -> tuple[int, int]:
    """The instants [first, end) whose window of `size` µs has its start and its end (a record's
    window_start and window_end) in the years 1-9999: the only windows aggregate places."""
    return -(-MIN_US // size) * size, MAX_US // size * size


@dataclass
class Window:
    """Counts of one window: per region, per source, and the ids counted per region (`Tally`
    adds to them)."""

    index: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)


class Windows:
    """Open windows and the watermark (largest event time seen minus the allowed lateness)."""

    def __init__(self, size: int, lateness: int = 0) -> None:
        """`size` and `lateness` in microseconds."""
        if size <= 0:
            raise ValueError("the window size must be positive")
        if lateness < 0:
            raise ValueError("lateness cannot be negative")
        self.size = size
        self.lateness = lateness
        self.max_seen: float = -math.inf
        self.watermark: float = -math.inf
        self.open: dict[int, Window] = {}
        self._next_end: float = math.inf

    def end_of(self, index: int) -> int:
        return (index + 1) * self.size

    def create(self, index: int) -> Window:
        window = self.open[index] = Window(index)
        self._next_end = min(self._next_end, self.end_of(index))
        return window

    @property
    def closes_at(self) -> float:
        """The newest event time at which the oldest open window closes."""
        return self._next_end + self.lateness

    def observe(self, at: float) -> Iterator[Window]:
        """Advance the watermark to `at` minus lateness and yield the windows that closed, oldest first."""
        if at <= self.max_seen:
            return iter(())
        self.max_seen = at
        self.watermark = max(self.watermark, at - self.lateness)
        if self.watermark < self._next_end:
            return iter(())
        return self._close(lambda w: self.end_of(w.index) <= self.watermark)

    def flush(self) -> Iterator[Window]:
        """Close every open window (end of input, or an idle input); later events for them are late."""
        if self.open:
            last_end = self.end_of(max(self.open))
            self.watermark = max(self.watermark, last_end)
        return self._close(lambda w: True)

    def _close(self, closes: Callable[[Window], bool]) -> Iterator[Window]:
        done = [w for w in self.open.values() if closes(w)]
        done.sort(key=lambda w: w.index)
        for w in done:
            del self.open[w.index]
        self._next_end = min((self.end_of(i) for i in self.open), default=math.inf)
        return iter(done)
