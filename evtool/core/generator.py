"""Synthetic events on a simulated clock: bursts, duplicates, disorder and invalid input on demand."""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson

from evtool.core import model
from evtool.core.invalid import MUTATIONS

MICROS = 1_000_000
BURST_SPEEDUP = 50
RECENT_FOR_DUPLICATES = 256
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


@dataclass(frozen=True)
class GenConfig:
    """Everything that decides the output; equal configs give byte-identical streams."""

    start_us: int
    count: int | None = None
    rate: float = 10.0
    seed: int | None = None
    burst_probability: float = 0.0
    burst_size: int = 50
    duplicates: float = 0.0
    out_of_order: float = 0.0
    max_delay: float = 5.0
    invalid: float = 0.0
    regions: tuple[str, ...] = model.REGIONS


class Emitted(NamedTuple):
    """One output line and the simulated instant it leaves the generator."""

    at_us: int
    line: bytes
    valid: bool


class Generator:
    """Yields `Emitted` lines in emission order; the caller decides whether to pace them."""

    def __init__(self, cfg: GenConfig) -> None:
        if cfg.rate <= 0:
            raise ValueError("rate must be positive")
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.now_us = cfg.start_us
        self._recent: deque[bytes] = deque(maxlen=RECENT_FOR_DUPLICATES)
        self._held: list[tuple[int, int, bytes]] = []
        self._held_seq = 0
        self._burst_left = 0
        self._burst_region = ""
        self._burst_corr = ""
        self._ts_sec = -1
        self._ts_prefix = ""
        self.duplicates = 0
        self.invalid = 0
        self._payloads: tuple[Callable[[], dict[str, Any]], ...] = (
            self._security, self._survey, self._migration,
        )

    def uuid(self) -> str:
        """A version-4-shaped UUID from the seeded generator (uuid4() would break reproducibility)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def timestamp(self, at_us: int) -> str:
        sec, micro = divmod(at_us, MICROS)
        if sec != self._ts_sec:
            self._ts_sec = sec
            moment = datetime.fromtimestamp(sec, tz=timezone.utc)
            self._ts_prefix = moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._ts_prefix}.{micro:06d}+00:00"

    def _pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.random() * len(options))]

    def _int(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low + 1))

    def _security(self) -> dict[str, Any]:
        return {
            "incident_type": self._pick(model.INCIDENT_TYPES),
            "severity": self._int(1, 5),
            "reported_by": self._pick(model.REPORTERS),
        }

    def _survey(self) -> dict[str, Any]:
        victimized = self.rng.random() < 0.3
        return {
            "respondent_age": self._int(15, 90),
            "victimized": victimized,
            "perceived_safety": self._int(1, 5),
            "reported_to_police": victimized and self.rng.random() < 0.4,
        }

    def _migration(self) -> dict[str, Any]:
        return {
            "case_type": self._pick(model.CASE_TYPES),
            "origin_country": self._pick(model.COUNTRIES),
            "status": self._pick(model.CASE_STATUSES),
            "applicants": self._int(1, 6),
        }

    def event(self, at_us: int, source_index: int | None = None) -> dict[str, Any]:
        """A valid event at simulated time `at_us`."""
        if source_index is None:
            source_index = int(self.rng.random() * 3)
        return {
            "event_id": self.uuid(),
            "timestamp": self.timestamp(at_us),
            "region": self._pick(self.cfg.regions),
            "source": model.SOURCES[source_index],
            "schema_version": "1.0",
            "correlation_id": self.uuid(),
            "payload": self._payloads[source_index](),
        }

    def _advance(self) -> None:
        rate = self.cfg.rate * (BURST_SPEEDUP if self._burst_left else 1)
        self.now_us += int(self.rng.expovariate(rate) * MICROS)

    def _fresh(self) -> dict[str, Any]:
        cfg = self.cfg
        if self._burst_left:
            self._burst_left -= 1
            ev = self.event(self.now_us, 0)
            ev["region"] = self._burst_region
            ev["correlation_id"] = self._burst_corr
            return ev
        if cfg.burst_probability and self.rng.random() < cfg.burst_probability:
            self._burst_left = cfg.burst_size - 1
            ev = self.event(self.now_us, 0)
            self._burst_region = ev["region"]
            self._burst_corr = ev["correlation_id"]
            return ev
        return self.event(self.now_us)

    def _release(self, until_us: int) -> Iterator[Emitted]:
        while self._held and self._held[0][0] <= until_us:
            _, _, line = heapq.heappop(self._held)
            self._recent.append(line)
            yield Emitted(until_us, line, True)

    def __iter__(self) -> Iterator[Emitted]:
        cfg = self.cfg
        rng = self.rng
        made = 0
        dup_p, bad_p, ooo_p = cfg.duplicates, cfg.invalid, cfg.out_of_order
        while cfg.count is None or made < cfg.count:
            self._advance()
            yield from self._release(self.now_us)
            roll = rng.random()
            if roll < dup_p and self._recent and not self._burst_left:
                self.duplicates += 1
                yield Emitted(self.now_us, self._recent[int(rng.random() * len(self._recent))], True)
            elif roll < dup_p + bad_p and not self._burst_left:
                mutate = MUTATIONS[int(rng.random() * len(MUTATIONS))]
                self.invalid += 1
                yield Emitted(self.now_us, mutate(rng, self.event(self.now_us)), False)
            else:
                line = orjson.dumps(self._fresh())
                if ooo_p and rng.random() < ooo_p:
                    delay = int(rng.random() * cfg.max_delay * MICROS)
                    heapq.heappush(self._held, (self.now_us + delay, self._held_seq, line))
                    self._held_seq += 1
                    made += 1
                    continue
                self._recent.append(line)
                yield Emitted(self.now_us, line, True)
            made += 1
        while self._held:
            yield from self._release(self._held[0][0])
