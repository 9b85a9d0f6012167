"""Synthetic events from a pack's schemas on a simulated clock: bursts, duplicates, disorder and
invalid input on demand."""

from __future__ import annotations

import bisect
import heapq
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from math import log as _log
from typing import Any

import orjson

from evtool.core.checks import predicate
from evtool.core.instant import MAX_US, MICROS, TimeError, iso_us
from evtool.core.invalid import Mutation, mutations_for
from evtool.core.pack import Pack, PackError, Schema
from evtool.core.plan import Make, Planner, dict_builder, for_generation, line_builder
from evtool.core.validation import EventValidator

BURST_SPEEDUP = 50
RECENT_FOR_DUPLICATES = 256
SAMPLES = 24
MUTATION_TRIES = 64
ROLES = ("event_id", "timestamp", "region", "source", "payload")
# Ways to write an instant, finest first: gen uses the first one the pack's envelope accepts.
# Each is what follows the whole seconds, as a template for the fraction, and its unit in µs.
TIMESTAMP_FORMS: tuple[tuple[str, str, int], ...] = (
    ("micro+00:00", ".{:06d}+00:00", 1),
    ("microZ", ".{:06d}Z", 1),
    ("milliZ", ".{:03d}Z", 1000),
    ("secondZ", "Z", MICROS),
    ("second+00:00", "+00:00", MICROS),
)
# A version-4 UUID's fixed bits, in the integer whose little-endian bytes are the UUID's
_UUID_KEEP = ~((0xF0 << 48) | (0xC0 << 64))
_UUID_SET = (0x40 << 48) | (0x80 << 64)


@dataclass(frozen=True)
class GenConfig:
    """Everything that decides the output; equal configs give byte-identical streams."""

    start_us: int
    pack: Pack
    count: int | None = None
    rate: float = 10.0
    seed: int | None = None
    burst_probability: float = 0.0
    burst_size: int | None = None
    duplicates: float = 0.0
    out_of_order: float = 0.0
    max_delay: float = 5.0
    invalid: float = 0.0


# One output line, the simulated instant (µs) it leaves the generator, and whether it is valid;
# a plain tuple, as a NamedTuple's constructor cost gen a tenth of its time.
Emitted = tuple[int, bytes, bool]


class Generator:
    """Yields `Emitted` lines in emission order; the caller decides whether to pace them."""

    def __init__(self, cfg: GenConfig) -> None:
        if cfg.rate <= 0:
            raise ValueError("rate must be positive")
        self.cfg = cfg
        self.pack = cfg.pack
        self.rng = random.Random(cfg.seed)
        self._getrandbits, self._random = self.rng.getrandbits, self.rng.random
        self._last_start_us = MAX_US - int(cfg.max_delay * MICROS)
        self.now_us = cfg.start_us
        self._recent: deque[bytes] = deque(maxlen=RECENT_FOR_DUPLICATES)
        self._held: list[tuple[int, int, bytes]] = []
        self._held_seq = 0
        self._burst_left = 0
        self._burst_fields: dict[str, Any] = {}
        self._ts_sec = -1
        self.duplicates = 0
        self.invalid = 0
        self._sources = [s for s in self.pack.sources if self.pack.weights[s] > 0]
        cumulative, total = [], 0.0
        for source in self._sources:
            total += self.pack.weights[source]
            cumulative.append(total)
        self._cumulative, self._total_weight = cumulative, total
        self._even = len(set(self.pack.weights[s] for s in self._sources)) == 1
        self._tail, self._unit = TIMESTAMP_FORMS[0][1:]
        self._ts_format = self._tail.format
        self._build: dict[str, Make] = {}
        self._compile()
        self._mutations = list(mutations_for(self.pack, lambda s: predicate(s, "an if")))
        self._next_mutation = len(self._mutations)
        self.rng.seed(cfg.seed)

    def uuid(self) -> str:
        """A version-4-shaped UUID from the seeded generator (uuid4() would break reproducibility):
        the bytes randbytes(16) would draw, its version and variant bits set."""
        b = ((self._getrandbits(128) & _UUID_KEEP) | _UUID_SET).to_bytes(16, "little")
        return f"{b[:4].hex()}-{b[4:10].hex('-', 2)}-{b[10:].hex()}"

    def timestamp(self, at_us: int) -> str:
        sec, micro = divmod(at_us, MICROS)
        if sec != self._ts_sec:
            self._ts_sec = sec
            moment = datetime.fromtimestamp(sec, tz=timezone.utc)
            self._ts_format = (moment.strftime("%Y-%m-%dT%H:%M:%S") + self._tail).format
        return self._ts_format(micro // self._unit)

    def _now_timestamp(self) -> str:
        sec, micro = divmod(self.now_us, MICROS)
        if sec != self._ts_sec:
            return self.timestamp(self.now_us)
        return self._ts_format(micro // self._unit)

    def _compile(self) -> None:
        """Per source, the envelope's fields in order, each with its maker; then a check that what
        they make passes the pack, and the first timestamp form it accepts."""
        pack, rng = self.pack, self.rng
        envelope = for_generation(pack.envelope)
        env_planner = Planner(pack.envelope, rng, self, f"{pack.where}envelope.json",
                              lambda s: predicate(s, "an if"))
        props: dict[str, Any] = envelope.get("properties", {})
        required = set(envelope.get("required", [])) | set(ROLES)
        names = list(dict.fromkeys([*props, *ROLES]))
        regions = pack.regions
        if not regions:
            raise PackError(f"{pack.where}envelope.json: 'region' needs an enum of regions")
        common: dict[str, Make] = {
            "event_id": self._id_maker(props.get("event_id"), env_planner),
            "timestamp": self._now_timestamp,
            "region": env_planner.choice(list(regions)),
        }
        fields: dict[str, list[tuple[str, Make, bool]]] = {}
        for source in pack.sources:
            where = f"{pack.where}payloads/{source}.json"
            planner = Planner(pack.payloads[source], rng, self, where, lambda s: predicate(s, "an if"))
            makers = {**common, "source": env_planner.choice([source]),
                      "payload": planner.value(pack.payloads[source], "payload")}
            fields[source] = [
                (n, makers[n] if n in makers else env_planner.value(props[n], n), n in required)
                for n in names
            ]
        self._build = {source: dict_builder(f, rng.random) for source, f in fields.items()}
        safe = (self.uuid, self._now_timestamp)
        self._line = {source: line_builder(f, rng.random, lambda make: make in safe)
                      for source, f in fields.items()}
        self._pick_form(EventValidator(pack))

    def _id_maker(self, schema: Schema | None, planner: Planner) -> Make:
        return planner.value(schema) if schema else self.uuid

    def _pick_form(self, validator: EventValidator) -> None:
        first_error, start = "", self.now_us
        for _name, tail, unit in TIMESTAMP_FORMS:
            self._tail, self._unit, self._ts_sec = tail, unit, -1
            error = next(filter(None, (validator.slow_error(self.event(start + i * 123_457, s))
                                       for s in self.pack.sources for i in range(SAMPLES))), None)
            self.now_us = start
            if error is None:
                return
            first_error = first_error or error
        raise PackError(f"{self.pack.where.rstrip(': /') or 'pack'}: gen cannot make events this "
                        f"pack accepts ({first_error}); give the field examples or x-generate")

    def source(self) -> str:
        """A source drawn by the pack's weights."""
        if self._even:
            return self._sources[int(self.rng.random() * len(self._sources))]
        at = self.rng.random() * self._total_weight
        return self._sources[min(bisect.bisect_right(self._cumulative, at), len(self._sources) - 1)]

    def event(self, at_us: int, source: str | None = None) -> dict[str, Any]:
        """A valid event at simulated time `at_us`."""
        self.now_us = at_us
        event: dict[str, Any] = self._build[source if source is not None else self.source()]()
        return event

    def bad_line(self) -> bytes:
        """The next rule to break, in a shuffled cycle so that every rule is broken in turn."""
        if self._next_mutation >= len(self._mutations):
            self.rng.shuffle(self._mutations)
            self._next_mutation = 0
        mutation: Mutation = self._mutations[self._next_mutation]
        self._next_mutation += 1
        for _ in range(MUTATION_TRIES):
            line = mutation.apply(self.rng, self.event(self.now_us, mutation.source))
            if line is not None:
                return line
        return b"{}"

    def _advance(self) -> None:
        rate = self.cfg.rate * (BURST_SPEEDUP if self._burst_left else 1)
        # random.expovariate's own formula, inlined: the same draws, one call fewer per event
        self.now_us += int(-_log(1.0 - self._random()) / rate * MICROS)
        if self.now_us > self._last_start_us:
            raise TimeError(f"the simulated clock passed {iso_us(MAX_US)}, the last instant "
                            "evtool can write")

    def _fresh(self) -> bytes:
        """A new valid event's line: written straight from the plan, or, in a burst, built as
        a dict to take the burst's region and correlation id (the same draws either way)."""
        cfg, burst = self.cfg, self.pack.burst
        if self._burst_left:
            self._burst_left -= 1
            ev = self.event(self.now_us, burst.source)
            ev.update(self._burst_fields)
            return orjson.dumps(ev)
        if cfg.burst_probability and self.rng.random() < cfg.burst_probability:
            size = cfg.burst_size or burst.low + int(self.rng.random() * (burst.high - burst.low + 1))
            self._burst_left = size - 1
            ev = self.event(self.now_us, burst.source)
            self._burst_fields = {k: ev[k] for k in ("region", "correlation_id") if k in ev}
            return orjson.dumps(ev)
        return self._line[self.source()]().encode()

    def _release(self, until_us: int) -> Iterator[Emitted]:
        while self._held and self._held[0][0] <= until_us:
            _, _, line = heapq.heappop(self._held)
            self._recent.append(line)
            yield until_us, line, True

    def __iter__(self) -> Iterator[Emitted]:
        cfg = self.cfg
        rng = self.rng
        made = 0
        dup_p, bad_p, ooo_p = cfg.duplicates, cfg.invalid, cfg.out_of_order
        held = self._held
        while cfg.count is None or made < cfg.count:
            self._advance()
            if held and held[0][0] <= self.now_us:
                yield from self._release(self.now_us)
            roll = rng.random()
            if roll < dup_p and self._recent and not self._burst_left:
                self.duplicates += 1
                yield self.now_us, self._recent[int(rng.random() * len(self._recent))], True
            elif roll < dup_p + bad_p and not self._burst_left:
                self.invalid += 1
                yield self.now_us, self.bad_line(), False
            else:
                line = self._fresh()
                if ooo_p and rng.random() < ooo_p:
                    delay = int(rng.random() * cfg.max_delay * MICROS)
                    heapq.heappush(self._held, (self.now_us + delay, self._held_seq, line))
                    self._held_seq += 1
                    made += 1
                    continue
                self._recent.append(line)
                yield self.now_us, line, True
            made += 1
        while self._held:
            yield from self._release(self._held[0][0])
