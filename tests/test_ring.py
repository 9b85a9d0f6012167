"""The shared memory aggregate's read-ahead child hands lines over in: every batch comes out as it
went in, however batches fill, wrap and wait on the ring, and a child whose stage is gone stops."""

from __future__ import annotations

import os
import queue
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.transports.ring import Place, Ring

LINE = st.binary(max_size=30).filter(lambda line: b"\n" not in line)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(LINE, max_size=5), max_size=30), size=st.integers(20, 200))
def test_each_batch_comes_out_as_it_went_in(batches: list[list[bytes]], size: int) -> None:
    """A child thread puts while the stage takes in order: a batch written over one not yet
    copied out would come out changed, and a wait for room that never comes would hang."""
    ring = Ring(size)
    places: queue.Queue[tuple[list[bytes], Place | None] | None] = queue.Queue()

    def child() -> None:
        for lines in batches:
            places.put((lines, ring.put(lines)))
        places.put(None)

    thread = threading.Thread(target=child, daemon=True)
    thread.start()
    try:
        while (got := places.get(timeout=10)) is not None:
            lines, place = got
            if place is None:                   # larger than the ring: it goes in its frame
                assert len(b"\n".join(lines)) > size
            else:
                assert ring.take(place) == lines
        thread.join(10)
    finally:
        ring.close()


def test_a_batch_waits_for_the_room_of_those_not_yet_copied_out() -> None:
    ring = Ring(100)
    first = ring.put([b"a" * 60])
    assert first is not None and first[:2] == (0, 60)
    waited: list[Place | None] = []
    thread = threading.Thread(target=lambda: waited.append(ring.put([b"b" * 50])), daemon=True)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive() and not waited         # its room is the first batch's
    assert ring.take(first) == [b"a" * 60]
    thread.join(10)
    assert waited and waited[0] is not None and waited[0][:2] == (0, 50)    # wrapped to the start
    assert ring.take(waited[0]) == [b"b" * 50]
    ring.close()


def test_a_child_whose_stage_is_gone_stops_rather_than_wait() -> None:
    ring = Ring(100)
    assert ring.put([b"a" * 60]) is not None
    os.close(ring.said)                             # the stage's end, closed as when it dies
    ring.said = -1
    with pytest.raises(EOFError):
        ring.put([b"b" * 60])
    ring.close()
