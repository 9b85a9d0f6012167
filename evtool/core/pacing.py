"""Paces output by event time against an injected wall clock (gen's real time, replay --speed)."""

from __future__ import annotations

from collections.abc import Callable


class Pacer:
    """How long to wait before an event at `event_seconds`, so event time flows at `speed`x."""

    def __init__(self, clock: Callable[[], float], speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.clock = clock
        self.speed = speed
        self._origin: tuple[float, float] | None = None

    def delay(self, event_seconds: float) -> float:
        now = self.clock()
        if self._origin is None:
            self._origin = (now, event_seconds)
            return 0.0
        wall0, event0 = self._origin
        return wall0 + (event_seconds - event0) / self.speed - now
