"""Remembers event ids for a horizon of event time, in memory that stays bounded on an endless stream."""

from __future__ import annotations

import re
from collections import deque

SLICES = 16
Key = int | str


UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def compact_id(event_id: str) -> Key:
    """A UUID as a 128-bit int (half the memory of the string, and one key for both cases of
    its hex digits); any other id as the string. Ints and strings never compare equal, so two
    different ids never share a key."""
    if UUID.fullmatch(event_id):
        return int(event_id.replace("-", ""), 16)
    return event_id


def fold_id(event_id: str) -> str:
    """UUIDs are case-insensitive: one spelling, lower case, for dedupe, trace and storage."""
    return event_id.lower() if not event_id.islower() and UUID.fullmatch(event_id) else event_id


class Deduper:
    """Set membership with expiry: ids are kept in time slices and dropped a whole slice at a time."""

    def __init__(self, horizon: int) -> None:
        """`horizon` in microseconds of event time."""
        if horizon <= 0:
            raise ValueError("the dedupe horizon must be positive")
        self.horizon = horizon
        self.span = max(horizon // SLICES, 1)
        self.keys: set[Key] = set()
        self._slices: deque[tuple[int, list[Key]]] = deque()

    def slice_for(self, index: int) -> list[Key]:
        """The list that keeps keys of slice `index` (or of the newest, if that one is newer)."""
        slices = self._slices
        if not slices or slices[-1][0] < index:
            slices.append((index, []))
        return slices[-1][1]

    @property
    def newest_slice(self) -> int:
        return self._slices[-1][0] if self._slices else -(1 << 62)

    def expire(self, now: float) -> None:
        """Forget ids whose whole slice lies more than a horizon before event time `now`."""
        limit = now - self.horizon
        slices, seen = self._slices, self.keys
        while slices and (slices[0][0] + 1) * self.span <= limit:
            for key in slices.popleft()[1]:
                seen.discard(key)
