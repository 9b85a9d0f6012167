"""Remembers event ids for a horizon of event time, in memory that stays bounded on an endless stream."""

from __future__ import annotations

from collections import deque

SLICES = 16
Key = int | str


def compact_id(event_id: str) -> Key:
    """A canonical lower-case UUID as a 128-bit int (half the memory of the string); else the string.

    Ints and strings never compare equal, so two different ids never share a key.
    """
    if len(event_id) == 36:
        h = event_id.replace("-", "")
        if len(h) == 32 and h.isalnum() and (h.islower() or h.isdigit()) and (
            event_id[8] == event_id[13] == event_id[18] == event_id[23] == "-"
        ):
            try:
                return int(h, 16)
            except ValueError:
                pass
    return event_id


class Deduper:
    """Set membership with expiry: ids are kept in time slices and dropped a whole slice at a time."""

    def __init__(self, horizon: float) -> None:
        if horizon <= 0:
            raise ValueError("the dedupe horizon must be positive")
        self.horizon = horizon
        self.span = horizon / SLICES
        self._seen: set[Key] = set()
        self._slices: deque[tuple[int, list[Key]]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: Key) -> bool:
        return key in self._seen

    def add(self, key: Key, at: float) -> None:
        """Remember `key` from event time `at`; an older id joins the newest slice (kept longer)."""
        self._seen.add(key)
        index = int(at // self.span)
        slices = self._slices
        if slices and slices[-1][0] >= index:
            slices[-1][1].append(key)
        else:
            slices.append((index, [key]))

    def expire(self, now: float) -> None:
        """Forget ids whose whole slice lies more than a horizon before event time `now`."""
        limit = now - self.horizon
        slices, seen = self._slices, self._seen
        while slices and (slices[0][0] + 1) * self.span <= limit:
            for key in slices.popleft()[1]:
                seen.discard(key)
