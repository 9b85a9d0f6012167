"""Counting events into event-time windows once per id: aggregate's hot loop with the state it
keeps, one object so that what the tests drive is what the stage runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Protocol

from evtool.core.dedupe import Deduper
from evtool.core.fields import Fields
from evtool.core.windows import Window, Windows, placeable

# a line the fast path did not read: its fields, or None once the stage has dealt with it
ReadSlowly = Callable[[bytes], "Fields | None"]
# windows that closed, oldest first, with the duplicates dropped since the previous call
Closed = Callable[[Iterator[Window], int], None]


class Refusals(Protocol):
    """Where an event the tally will not count goes (the stage makes each a dead letter)."""

    def late(self, line: bytes, event_id: str, index: int, watermark: float) -> None: ...

    def future(self, line: bytes, event_id: str, at: int, newest: float) -> None: ...

    def unplaceable(self, line: bytes, event_id: str, index: int) -> None: ...


class Tally:
    """Tumbling windows of `size` µs closed by a watermark `lateness` µs behind the newest event,
    ids remembered for `horizon` µs, events more than `ahead` µs past the newest refused (0: any)."""

    def __init__(self, size: int, lateness: int = 0, horizon: int = 0, ahead: int = 0) -> None:
        self.windows = Windows(size, lateness)
        self.seen = Deduper(max(horizon, size + lateness))
        self.ahead = ahead
        self._expired_at = -(1 << 62)

    def count(self, lines: list[bytes], fields: list[Fields | None], read: ReadSlowly,
              refuse: Refusals, closed: Closed, forward: list[bytes] | None = None) -> int:
        """Count a batch (`fields[i]` read from `lines[i]`, or None for `read` to read it); each
        counted line goes to `forward` if given. Returns how many were counted. Per-event work is
        inlined: a method call per event would cost a third of the stage's speed."""
        windows, seen = self.windows, self.seen
        size, lateness, span = windows.size, windows.lateness, seen.span
        open_get, keys = windows.open.get, seen.keys
        max_seen, watermark, closes_at = windows.max_seen, windows.watermark, windows.closes_at
        ahead = self.ahead
        low, end = placeable(size)
        limit = max_seen + ahead if ahead and math.isfinite(max_seen) else math.inf
        # slice and expiry boundaries as instants: `at // span` divides by a two-digit int
        slice_end, slice_keys = 0, None
        expires_at = (self._expired_at + 1) * span
        counted = duplicates = 0
        current: int | None = None
        counts: dict[str, dict[str, int]] = {}
        ids: dict[str, list[str]] = {}
        for line, got in zip(lines, fields, strict=True):
            if got is None:
                got = read(line)
                if got is None:
                    continue
            event_id, region, source, at, key = got
            if at > limit:
                refuse.future(line, event_id, at, max_seen)
                continue
            known = len(keys)
            keys.add(key)               # one lookup: a duplicate leaves the set as it was
            if len(keys) == known:
                duplicates += 1
                continue
            if slice_keys is None or at >= slice_end:
                slice_keys = seen.slice_for(at // span)
                slice_end = (seen.newest_slice + 1) * span
            slice_keys.append(key)
            index = at // size
            if index != current:        # the open window of the event before is open still
                if (index + 1) * size <= watermark:
                    # the first copy of an id is the one that counts, late or not: audit keeps it
                    refuse.late(line, event_id, index, watermark)
                    continue
                window = open_get(index)
                if window is None:
                    if not low <= at < end:
                        keys.discard(key)
                        refuse.unplaceable(line, event_id, index)
                        continue
                    window = windows.create(index)
                    closes_at = windows.closes_at
                current, counts, ids = index, window.counts, window.ids
            by_source = counts.get(region)
            if by_source is None:
                counts[region] = {source: 1}
                ids[region] = [event_id]
            else:
                by_source[source] = by_source.get(source, 0) + 1
                ids[region].append(event_id)
            counted += 1
            if forward is not None:
                forward.append(line)
            if at > max_seen:
                max_seen = at
                if ahead:
                    limit = at + ahead
                if at - lateness > watermark:
                    watermark = at - lateness
                if at >= closes_at:
                    # a window carries the duplicates dropped before it in the input, never as
                    # many as the read it closed in happened to hold
                    closed(windows.observe(at), duplicates)
                    duplicates = 0
                    watermark, closes_at = windows.watermark, windows.closes_at
                    current = None          # closing may have closed it
                if at >= expires_at:
                    # expiry follows event time alone, never how the input was cut into reads
                    self._expired_at = at // span
                    expires_at = (self._expired_at + 1) * span
                    seen.expire(at)
        closed(windows.observe(max_seen), duplicates)
        return counted
