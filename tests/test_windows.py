"""aggregate's tally (windows, watermark, dedupe) told as timelines: `t=` is event time in whole
units, window size 5. These drive `Tally.count`, the loop the stage runs, one batch per call."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from evtool.core.dedupe import compact_id
from evtool.core.instant import MIN_US
from evtool.core.tally import Tally
from evtool.core.windows import Window, placeable


class Refused:
    """What the tally would not count, by reason: the ids."""

    def __init__(self) -> None:
        self.by: dict[str, list[str]] = {"late": [], "future": [], "unplaceable": []}

    def late(self, line: bytes, event_id: str, index: int, watermark: float) -> None:
        self.by["late"].append(event_id)

    def future(self, line: bytes, event_id: str, at: int, newest: float) -> None:
        self.by["future"].append(event_id)

    def unplaceable(self, line: bytes, event_id: str, index: int) -> None:
        self.by["unplaceable"].append(event_id)


class Timeline:
    """A tally fed batches of (id, t) events in region `r` from source `s`."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.refused = Refused()
        self.closed: list[Window] = []
        self.duplicates = 0

    def feed(self, *events: tuple[str, int]) -> list[int]:
        """Count one batch; the indexes of the windows it closed, in the order they closed."""
        before = len(self.closed)

        def closed(windows: Iterator[Window], duplicates: int) -> None:
            self.closed.extend(windows)
            self.duplicates += duplicates

        fields = [(event_id, "r", "s", at, compact_id(event_id)) for event_id, at in events]
        self.tally.count([event_id.encode() for event_id, _ in events], list(fields),
                         lambda line: None, self.refused, closed)
        return [w.index for w in self.closed[before:]]


def test_window_closes_when_watermark_reaches_its_end() -> None:
    t = Timeline(Tally(5))
    assert t.feed(("a", 1)) == []         # window [0,5)
    assert t.feed(("b", 4)) == []         # watermark 4 < end 5
    assert t.feed(("c", 5)) == [0]        # watermark 5 == end 5: emitted
    assert t.closed[0].counts == {"r": {"s": 2}} and sorted(t.closed[0].ids["r"]) == ["a", "b"]


def test_lateness_holds_windows_open_longer() -> None:
    t = Timeline(Tally(5, lateness=2))
    t.feed(("a", 1))
    assert t.feed(("b", 6)) == []         # watermark 4
    t.feed(("c", 3))                      # [0,5) still takes events
    assert t.feed(("d", 7)) == [0]        # watermark 5
    t.feed(("e", 2))
    assert t.refused.by["late"] == ["e"]
    assert sorted(t.closed[0].ids["r"]) == ["a", "c"]


def test_a_window_without_events_counts_as_closed() -> None:
    t = Timeline(Tally(5))
    t.feed(("a", 23))                     # watermark 23: [15,20) never had events, yet it is closed
    t.feed(("b", 17), ("c", 21))          # [20,25) is open
    assert t.refused.by["late"] == ["b"]
    assert t.tally.windows.open[4].ids == {"r": ["a", "c"]}


def test_several_windows_close_oldest_first() -> None:
    t = Timeline(Tally(5, lateness=20))
    assert t.feed(("c", 11), ("a", 1), ("b", 6)) == []
    assert t.feed(("z", 100)) == [0, 1, 2]


def test_watermark_never_goes_back() -> None:
    t = Timeline(Tally(5, lateness=1))
    t.feed(("a", 10))
    assert t.feed(("b", 3)) == []
    assert t.tally.windows.watermark == 9 and t.refused.by["late"] == ["b"]


def test_flush_closes_everything_and_later_events_are_late() -> None:
    t = Timeline(Tally(5, lateness=10))
    t.feed(("a", 1), ("b", 6))
    assert [w.index for w in t.tally.windows.flush()] == [0, 1]
    t.feed(("c", 7))
    assert t.refused.by["late"] == ["c"]  # an idle flush is final: no second [5,10) window


def test_negative_times_align_to_epoch() -> None:
    t = Timeline(Tally(5, lateness=10))
    t.feed(("a", -1), ("b", 0))
    assert sorted(t.tally.windows.open) == [-1, 0]    # [-5, 0) and [0, 5)


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        Tally(0)
    with pytest.raises(ValueError):
        Tally(5, lateness=-1)


def test_a_duplicate_counts_once_and_rides_on_the_next_window() -> None:
    t = Timeline(Tally(5))
    t.feed(("a", 1), ("a", 2), ("A", 3))
    t.feed(("a", 4), ("b", 6))
    assert t.closed[0].ids == {"r": ["a", "A"]}       # ids are case-sensitive unless UUIDs
    assert t.duplicates == 2


def test_dedupe_remembers_within_horizon_and_forgets_after() -> None:
    t = Timeline(Tally(5, horizon=160))   # slices of 10
    t.feed(("a", 0))
    t.feed(("x", 100), ("a", 100))
    assert t.duplicates == 1
    t.feed(("y", 170))                    # slice [0,10) ends at 10 <= 170 - 160: forgotten
    t.feed(("a", 171))
    assert t.duplicates == 1
    assert "a" in t.tally.windows.open[34].ids["r"]


def test_an_event_far_ahead_is_refused_and_moves_nothing() -> None:
    t = Timeline(Tally(5, ahead=10))
    t.feed(("a", 0))
    assert t.feed(("b", 11), ("c", 10)) == [0]        # c (10 ahead) counts and closes [0,5)
    assert t.refused.by["future"] == ["b"]
    assert t.tally.windows.max_seen == 10


def test_an_unplaceable_event_is_refused_and_its_id_not_remembered() -> None:
    t = Timeline(Tally(5))
    t.feed(("a", MIN_US - 10))
    t.feed(("a", 1))
    assert t.refused.by["unplaceable"] == ["a"] and t.tally.windows.open[0].ids == {"r": ["a"]}


def test_dedupe_memory_is_bounded_on_an_endless_stream() -> None:
    t = Timeline(Tally(10, horizon=60))
    for start in range(0, 200_000, 1000):
        t.feed(*((str(i), i // 100) for i in range(start, start + 1000)))   # 100 per unit of time
    assert len(t.tally.seen.keys) <= 100 * (60 + 60 / 16) + 1000
    assert sum(sum(w.counts["r"].values()) for w in t.closed) + 100 * 10 >= 200_000


def test_compact_id_is_injective_on_ids_and_folds_uuid_case() -> None:
    lower = "6f1c0a2e-5b1d-4e8e-9a57-6576746f6f6c"
    assert isinstance(compact_id(lower), int)
    assert compact_id(lower.upper()) == compact_id(lower)          # one UUID, either case
    assert compact_id("AbC") != compact_id("abc")                  # other ids keep their case
    assert compact_id(lower.replace("-", "_")) != compact_id(lower)
    assert compact_id("+" + lower[1:]) != compact_id("0" + lower[1:])
    assert compact_id("x") == "x"


def test_infinite_watermark_start() -> None:
    assert Tally(5).windows.watermark == -math.inf


class _Refused:
    """Tally's refusals, the unplaceable ones kept."""

    def __init__(self) -> None:
        self.indexes: list[int] = []

    def late(self, line: bytes, event_id: str, index: int, watermark: float) -> None: ...

    def future(self, line: bytes, event_id: str, at: int, newest: float) -> None: ...

    def unplaceable(self, line: bytes, event_id: str, index: int) -> None:
        self.indexes.append(index)


def _in_the_years(at: int, size: int) -> bool:
    """Whether the window of `at` can be written: its window_start and window_end both instants
    of the years datetime holds (1-9999)."""
    start = at // size * size
    try:
        for edge in (start, start + size):
            datetime(1970, 1, 1) + timedelta(microseconds=edge)
    except OverflowError:
        return False
    return True


@pytest.mark.parametrize("size", [1, 7, 5_000_000, 86_400_000_000, 10**17])
def test_placeable_instants_are_the_ones_aggregate_counts(size: int) -> None:
    """Verification leaves out what lies outside `placeable`, Tally refuses the same events,
    and both are the windows whose start and end the years 1-9999 hold."""
    low, end = placeable(size)
    for at in (low - 1, low, end - 1, end):
        refused = _Refused()
        counted = Tally(size).count([b"e"], [("e", "r", "s", at, "e")], lambda line: None, refused,
                                    lambda windows, duplicates: None)
        assert (counted == 1) == (low <= at < end) == _in_the_years(at, size), at
        assert (not refused.indexes) == (counted == 1), at
