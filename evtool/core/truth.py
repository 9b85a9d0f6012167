"""What a correct aggregate must output for the events gen wrote: written straight from the
contract's rules, sharing no code with aggregate, so users can check their own pipeline."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import orjson

from evtool.core.dedupe import fold_id
from evtool.core.instant import iso_us, micros_of
from evtool.core.roles import Roles


class Truth:
    """Fed the valid lines in the order gen emits them; exact (no expiry, no shortcuts)."""

    def __init__(self, window: float, lateness: float, roles: Roles | None = None) -> None:
        self.roles = roles or Roles()
        self.window = micros_of(window, "--window")
        self.lateness = round(lateness * 1_000_000)
        self.seen: set[str] = set()
        self.newest: float = -math.inf
        self.counts: dict[int, dict[str, dict[str, int]]] = {}
        self.duplicates = 0
        self.late = 0

    def add(self, line: bytes) -> None:
        event = orjson.loads(line)
        roles = self.roles
        event_id = fold_id(roles.event_id(event))
        if event_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(event_id)     # the first copy counts, or is late: later ones are duplicates
        at = roles.time_us(event)
        index = at // self.window
        if (index + 1) * self.window <= self.newest - self.lateness:
            self.late += 1
            return
        by_source = self.counts.setdefault(index, {}).setdefault(roles.region_of(event), {})
        source = roles.source_of(event)
        by_source[source] = by_source.get(source, 0) + 1
        self.newest = max(self.newest, at)

    def windows(self) -> Iterator[dict[str, Any]]:
        """One expected window per line, in window_start order."""
        for index in sorted(self.counts):
            cells = self.counts[index]
            yield {
                "kind": "truth",
                "window_start": iso_us(index * self.window),
                "window_end": iso_us((index + 1) * self.window),
                "total": sum(n for by in cells.values() for n in by.values()),
                "by_region_source": {r: dict(sorted(by.items())) for r, by in sorted(cells.items())},
            }
