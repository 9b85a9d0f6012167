"""Windows and watermark, told as timelines: `t=` is event time in seconds, window size 5."""

from __future__ import annotations

import math

import pytest

from evtool.core.dedupe import Deduper, compact_id
from evtool.core.windows import Windows


def closed(ws: Windows, at: float) -> list[int]:
    return [w.index for w in ws.observe(at)]


def test_window_closes_when_watermark_reaches_its_end() -> None:
    ws = Windows(5)
    ws.add(0, "maule", "s", "a")          # t=1 -> window [0,5)
    assert closed(ws, 1) == []
    assert closed(ws, 4.999) == []        # watermark 4.999 < end 5
    assert closed(ws, 5) == [0]           # watermark 5 == end 5: emitted


def test_lateness_holds_windows_open_longer() -> None:
    ws = Windows(5, lateness=2)
    ws.add(0, "maule", "s", "a")
    assert closed(ws, 6.5) == []          # watermark 4.5
    assert not ws.is_late(0)              # an event for [0,5) is still accepted
    assert closed(ws, 7) == [0]           # watermark 5
    assert ws.is_late(0)


def test_window_without_events_counts_as_closed() -> None:
    ws = Windows(5)
    closed(ws, 23)                        # watermark 23: [0,5) .. [15,20) are all past
    assert ws.is_late(3)                  # [15,20) never had events, yet it is closed
    assert not ws.is_late(4)              # [20,25) is open


def test_several_windows_close_oldest_first() -> None:
    ws = Windows(5)
    for index in (2, 0, 1):
        ws.add(index, "r", "s", str(index))
    assert closed(ws, 100) == [0, 1, 2]


def test_watermark_never_goes_back() -> None:
    ws = Windows(5, lateness=1)
    closed(ws, 10)
    assert closed(ws, 3) == []
    assert ws.watermark == 9


def test_flush_closes_everything_and_later_events_are_late() -> None:
    ws = Windows(5)
    ws.add(0, "r", "s", "a")
    ws.add(1, "r", "s", "b")
    assert [w.index for w in ws.flush()] == [0, 1]
    assert ws.is_late(1)                  # an idle flush is final: no second [5,10) window


def test_negative_times_align_to_epoch() -> None:
    ws = Windows(5)
    assert ws.index_of(-1) == -1          # [-5, 0)
    assert ws.index_of(0) == 0


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        Windows(0)
    with pytest.raises(ValueError):
        Windows(5, lateness=-1)


def test_dedupe_remembers_within_horizon_and_forgets_after() -> None:
    d = Deduper(horizon=160)              # slices of 10 s
    d.add("a", at=0)
    d.expire(now=100)
    assert "a" in d
    d.expire(now=170)                     # slice [0,10) ends at 10 <= 170 - 160
    assert "a" not in d


def test_dedupe_memory_is_bounded_on_an_endless_stream() -> None:
    d = Deduper(horizon=60)
    for i in range(200_000):
        d.add(i, at=i // 100)             # 100 events per unit of event time
        if i % 1000 == 0:
            d.expire(now=i // 100)
    assert len(d) <= 100 * (60 + 60 / 16) + 1000


def test_compact_id_is_injective_on_ids_and_folds_uuid_case() -> None:
    lower = "6f1c0a2e-5b1d-4e8e-9a57-6576746f6f6c"
    assert isinstance(compact_id(lower), int)
    assert compact_id(lower.upper()) == compact_id(lower)          # one UUID, either case
    assert compact_id("AbC") != compact_id("abc")                  # other ids keep their case
    assert compact_id(lower.replace("-", "_")) != compact_id(lower)
    assert compact_id("+" + lower[1:]) != compact_id("0" + lower[1:])
    assert compact_id("x") == "x"


def test_infinite_watermark_start() -> None:
    assert Windows(5).watermark == -math.inf
