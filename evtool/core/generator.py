"""Synthetic events from a pack's schemas on a simulated clock: bursts, duplicates, disorder and
invalid input on demand."""

from __future__ import annotations

import bisect
import heapq
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from math import log as _log
from typing import Any

import orjson

from evtool.core.builders import Make, Uuid4, dict_builder, line_builder
from evtool.core.checks import predicate
from evtool.core.instant import MAX_US, MICROS, TimeError, iso_us
from evtool.core.invalid import Mutation, mutations_for
from evtool.core.pack import Pack, PackError, Schema
from evtool.core.plan import Planner, for_generation
from evtool.core.roles import UNITS, parse_pointer
from evtool.core.validation import EventValidator

BURST_SPEEDUP = 50
RECENT_FOR_DUPLICATES = 256
SAMPLES = 24
MUTATION_TRIES = 64
ROLE_ORDER = ("id", "time", "region", "source", "payload")      # where gen puts fields no schema orders
SAMPLE_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
# Ways to write an instant, finest first: gen uses the first one the pack's envelope accepts.
# Each is the digits of the fraction (none, milli or micro) and what follows them.
TIMESTAMP_FORMS: tuple[tuple[str, int, str], ...] = (
    ("micro+00:00", 6, "+00:00"),
    ("microZ", 6, "Z"),
    ("milliZ", 3, "Z"),
    ("secondZ", 0, "Z"),
    ("second+00:00", 0, "+00:00"),
)
# a pack that reads times without an offset in its time_zone: those forms come first
NAIVE_FORMS: tuple[tuple[str, int, str], ...] = (("micro", 6, ""), ("milli", 3, ""), ("second", 0, ""))
_D2 = [f"{i:02d}" for i in range(60)]
_D3 = [f"{i:03d}" for i in range(1000)]      # a table lookup writes digits cheaper than format()


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
        self._random = self.rng.random
        self.uuid = Uuid4(self.rng.getrandbits)
        self._last_start_us = MAX_US - int(cfg.max_delay * MICROS)
        self.now_us = cfg.start_us
        self._recent: deque[bytes] = deque(maxlen=RECENT_FOR_DUPLICATES)
        self._held: list[tuple[int, int, bytes]] = []
        self._held_seq = 0
        self._burst_left = 0
        self._burst_fields: dict[str, Any] = {}
        self._ts_from = self._ts_to = 0
        self._ts_day: int | None = None
        self._ts_date = self._ts_head = ""
        self.duplicates = 0
        self.invalid = 0
        self._sources = [s for s in self.pack.sources if self.pack.weights[s] > 0]
        cumulative, total = [], 0.0
        for source in self._sources:
            total += self.pack.weights[source]
            cumulative.append(total)
        self._cumulative, self._total_weight = cumulative, total
        self._even = len(set(self.pack.weights[s] for s in self._sources)) == 1
        self._digits, self._tail = TIMESTAMP_FORMS[0][1:]
        roles = self.pack.roles
        self._forms = (NAIVE_FORMS + TIMESTAMP_FORMS) if roles.time_zone else TIMESTAMP_FORMS
        self._shift_us = zone_offset_us(roles.time_zone)
        self._build: dict[str, Make] = {}
        self._line: dict[str, Callable[[], str]] = {}
        self._compile()
        self._mutations = list(mutations_for(self.pack, lambda s: predicate(s, "an if")))
        self._next_mutation = len(self._mutations)
        self.rng.seed(cfg.seed)

    def _enter_second(self, at_us: int) -> None:
        """The text up to the fraction for the second of `at_us`; the date only when it changes."""
        sec = at_us // MICROS
        self._ts_from, self._ts_to = sec * MICROS, (sec + 1) * MICROS
        day, rest = divmod(sec, 86400)
        if day != self._ts_day:
            self._ts_day = day
            self._ts_date = datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y-%m-%dT")
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        dot = "." if self._digits else ""
        self._ts_head = f"{self._ts_date}{_D2[hour]}:{_D2[minute]}:{_D2[second]}{dot}"

    def _now_timestamp(self) -> str:
        """The clock's instant in the pack's form."""
        at_us = self.now_us + self._shift_us
        if not self._ts_from <= at_us < self._ts_to:
            self._enter_second(at_us)
        micro, digits = at_us - self._ts_from, self._digits
        if digits == 6:
            return f"{self._ts_head}{_D3[micro // 1000]}{_D3[micro % 1000]}{self._tail}"
        if digits == 3:
            return f"{self._ts_head}{_D3[micro // 1000]}{self._tail}"
        return self._ts_head + self._tail

    def _compile(self) -> None:
        """Per source, the envelope's fields in order, each with its maker; then a check that what
        they make passes the pack, and the first timestamp form it accepts."""
        pack, rng = self.pack, self.rng
        named = pack.roles.top_level()
        whole = "payload" not in (named or {})          # the source's schema is the whole event
        if named is None or (whole and any("if" in p for p in pack.payloads.values())):
            self._compile_layout()
            return
        check: Callable[[Schema], Callable[[Any], bool]] = lambda s: predicate(s, "an if")  # noqa: E731
        env_planner = Planner(pack.envelope, rng, self, f"{pack.where}envelope.json", check)
        order = [named[r] for r in ROLE_ORDER if r in named]
        unit = UNITS[pack.roles.time_unit] if pack.roles.time_unit else 0
        fields: dict[str, list[tuple[str, Make, bool]]] = {}
        for source in pack.sources:
            where = f"{pack.where}payloads/{source}.json"
            planner = Planner(pack.payloads[source], rng, self, where, check)
            frame, frame_planner = (pack.payloads[source], planner) if whole else (pack.envelope, env_planner)
            frame = for_generation(frame)
            props: dict[str, Any] = frame.get("properties", {})
            required = set(frame.get("required", [])) | set(order)
            makers: dict[str, Make] = {
                named["time"]: (lambda: self.now_us // unit) if unit else self._now_timestamp}
            if "id" in named:
                makers[named["id"]] = self._id_maker(props.get(named["id"]), frame_planner)
            if "region" in named:
                makers[named["region"]] = self._region_maker(props.get(named["region"]), frame_planner)
            if not whole:
                makers[named["payload"]] = planner.value(pack.payloads[source], "payload")
            if "source" in named:
                makers[named["source"]] = frame_planner.choice([source])
            fields[source] = [
                (n, makers[n] if n in makers else frame_planner.value(props.get(n, {}), n), n in required)
                for n in dict.fromkeys([*props, *order])
            ]
        self._build = {source: dict_builder(f, rng.random) for source, f in fields.items()}
        safe = (self.uuid, self._now_timestamp)
        self._line = {source: line_builder(f, rng.random, lambda make: make in safe)
                      for source, f in fields.items()}
        self._pick_form(EventValidator(pack))

    def _compile_layout(self) -> None:
        """A pack with roles of its own: each event built from its schemas as an object, then the
        roles set where the pack says: the seeded UUIDs as ids, the clock as the time (in the
        pack's unit, or its form), the source's name."""
        pack, rng, roles = self.pack, self.rng, self.pack.roles
        check: Callable[[Schema], Callable[[Any], bool]] = lambda s: predicate(s, "an if")  # noqa: E731
        envelope = None
        if roles.payload:
            envelope = Planner(pack.envelope, rng, self, f"{pack.where}envelope.json", check).value(
                pack.envelope)
        for source in pack.sources:
            where = f"{pack.where}payloads/{source}.json"
            payload = Planner(pack.payloads[source], rng, self, where, check).value(
                pack.payloads[source], "payload")
            self._build[source] = self._layout_builder(envelope, payload, source)
            self._line[source] = _as_line(self._build[source])
        self._pick_form(EventValidator(pack))

    def _layout_builder(self, envelope: Make | None, payload: Make, source: str) -> Make:
        roles = self.pack.roles
        unit = UNITS[roles.time_unit] if roles.time_unit else 0
        uuid, stamp = self.uuid, self._now_timestamp

        def build() -> Any:
            event = envelope() if envelope is not None else None
            body = payload()
            if event is None or not roles.payload:
                event = body if isinstance(body, dict) else {}
            else:
                set_at(event, roles.payload, body)
            if roles.id is not None:
                set_at(event, roles.id, uuid())
            set_at(event, roles.time, self.now_us // unit if unit else stamp())
            if roles.source is not None:
                set_at(event, roles.source, source)
            return event

        return build

    def _id_maker(self, schema: Schema | None, planner: Planner) -> Make:
        """Seeded UUIDs where the id's schema takes them (ids must not repeat by chance)."""
        if not schema or predicate(schema, "an id")(SAMPLE_UUID):
            return self.uuid
        return planner.value(schema)

    def _region_maker(self, schema: Schema | None, planner: Planner) -> Make:
        """One of the pack's regions: its enum (or const, or examples) for gen."""
        regions = self.pack.regions
        if regions:
            return planner.choice(list(regions))
        shown = for_generation(schema) if isinstance(schema, dict) else {}
        if not {"enum", "const", "examples"} & set(shown):
            name = self.pack.roles.name("region")
            raise PackError(f"{self.pack.where}envelope.json: '{name}' needs an enum of regions "
                            "(or x-generate with one)")
        return planner.value(schema, self.pack.roles.name("region"))

    def _pick_form(self, validator: EventValidator) -> None:
        first_error, start = "", self.now_us
        for _name, digits, tail in self._forms:
            self._digits, self._tail, self._ts_to = digits, tail, self._ts_from
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

    def _plain(self) -> Callable[[], bytes] | None:
        """With no bursts, `_fresh` in one call: the same draws, the source picked by index (even
        weights) or by bisection (uneven)."""
        if self.cfg.burst_probability:
            return None
        random, makers = self._random, [self._line[s] for s in self._sources]
        n = len(makers)
        if self._even:
            return lambda: makers[int(random() * n)]().encode()
        cumulative, total, last = self._cumulative, self._total_weight, n - 1
        bisect_right = bisect.bisect_right
        return lambda: makers[min(bisect_right(cumulative, random() * total), last)]().encode()

    def _release(self, until_us: int) -> Iterator[Emitted]:
        while self._held and self._held[0][0] <= until_us:
            _, _, line = heapq.heappop(self._held)
            self._recent.append(line)
            yield until_us, line, True

    def __iter__(self) -> Iterator[Emitted]:
        cfg, random = self.cfg, self._random
        made, count = 0, cfg.count
        dup_p, dup_or_bad, ooo_p = cfg.duplicates, cfg.duplicates + cfg.invalid, cfg.out_of_order
        held, recent, last_start = self._held, self._recent, self._last_start_us
        rate, burst_rate = cfg.rate, cfg.rate * BURST_SPEEDUP
        plain = self._plain()
        while count is None or made < count:
            # random.expovariate's own formula, inlined: the same draws, one call fewer per event
            now = self.now_us + int(-_log(1.0 - random()) / (burst_rate if self._burst_left else rate)
                                    * MICROS)
            if now > last_start:
                raise _past_the_end()
            self.now_us = now
            if held and held[0][0] <= now:
                yield from self._release(now)
            roll = random()
            if roll < dup_p and recent and not self._burst_left:
                self.duplicates += 1
                yield now, recent[int(random() * len(recent))], True
            elif roll < dup_or_bad and not self._burst_left:
                self.invalid += 1
                yield now, self.bad_line(), False
            else:
                line = self._fresh() if plain is None else plain()
                if ooo_p and random() < ooo_p:
                    delay = int(random() * cfg.max_delay * MICROS)
                    heapq.heappush(held, (now + delay, self._held_seq, line))
                    self._held_seq += 1
                    made += 1
                    continue
                recent.append(line)
                yield now, line, True
            made += 1
        while held:
            yield from self._release(held[0][0])

    def lines(self) -> Iterator[bytes]:
        """The lines alone, as iterating makes them: with no duplicates, invalid or held-back
        events, in a loop with nothing else in it (the same draws, the roll included)."""
        cfg, plain = self.cfg, self._plain()
        if plain is None or cfg.duplicates or cfg.invalid or cfg.out_of_order:
            yield from (line for _, line, _ in self)
            return
        random, rate, last_start = self._random, cfg.rate, self._last_start_us
        made, count = 0, cfg.count
        while count is None or made < count:
            now = self.now_us + int(-_log(1.0 - random()) / rate * MICROS)
            if now > last_start:
                raise _past_the_end()
            self.now_us = now
            random()                # the roll that would pick a duplicate or an invalid line
            yield plain()
            made += 1


def _past_the_end() -> TimeError:
    return TimeError(f"the simulated clock passed {iso_us(MAX_US)}, the last instant evtool can write")


def set_at(doc: dict[str, Any], pointer: str, value: Any) -> None:
    """Put `value` at a JSON Pointer inside `doc`, making the objects on the way."""
    tokens = parse_pointer(pointer)
    for token in tokens[:-1]:
        inner = doc.get(token)
        if not isinstance(inner, dict):
            inner = doc[token] = {}
        doc = inner
    doc[tokens[-1]] = value


def zone_offset_us(zone: str | None) -> int:
    """How far a time_zone's wall clock is ahead of UTC, in µs."""
    if zone is None or zone in ("UTC", "Z"):
        return 0
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * MICROS


def _as_line(build: Make) -> Callable[[], str]:
    return lambda: orjson.dumps(build()).decode()
