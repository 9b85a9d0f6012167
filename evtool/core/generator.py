"""Synthetic events from a pack's schemas on a simulated clock: bursts, duplicates, disorder and
invalid input on demand."""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from evtool.core.stamps import D3, NAIVE_FORMS, TIMESTAMP_FORMS, Stamps, zone_offset_us
from evtool.core.validation import EventValidator

BURST_SPEEDUP = 50
RECENT_FOR_DUPLICATES = 256
SAMPLES = 24
MUTATION_TRIES = 64
BLOCK = 4096                     # gen --fast makes its lines in lists of this many
ROLE_ORDER = ("id", "time", "region", "source", "payload")      # where gen puts fields no schema orders
SAMPLE_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
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
        self.duplicates = 0
        self.invalid = 0
        self._sources = [s for s in self.pack.sources if self.pack.weights[s] > 0]
        cumulative, total = [], 0.0
        for source in self._sources:
            total += self.pack.weights[source]
            cumulative.append(total)
        self._cumulative, self._total_weight = cumulative, total
        self._even = len(set(self.pack.weights[s] for s in self._sources)) == 1
        roles = self.pack.roles
        self._forms = (NAIVE_FORMS + TIMESTAMP_FORMS) if roles.time_zone else TIMESTAMP_FORMS
        self.stamps = Stamps(zone_offset_us(roles.time_zone))
        self._unit = UNITS[roles.time_unit] if roles.time_unit else 0
        self._build: dict[str, Make] = {}
        self._line: dict[str, Callable[[Any], str]] = {}        # of the time field's value
        self._compile()
        self._mutations = list(mutations_for(self.pack, lambda s: predicate(s, "an if")))
        self._next_mutation = len(self._mutations)
        self.rng.seed(cfg.seed)

    def _now_timestamp(self) -> str:
        """The clock's instant in the pack's form."""
        return self.stamps(self.now_us)

    def _time_value(self) -> Any:
        """The time field's value for a line plan: the clock in the pack's unit, or its text."""
        return self.now_us // self._unit if self._unit else self.stamps(self.now_us)

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
        unit = self._unit
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
        safe, time = (self.uuid, self._now_timestamp), (named["time"], not unit)
        self._line = {source: line_builder(f, rng.random, lambda make: make in safe, time)
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
        unit = self._unit
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
            self.stamps.use(digits, tail)
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
        return self._line[self.source()](self._time_value()).encode()

    def _plain(self) -> Callable[[], bytes] | None:
        """With no bursts, `_fresh` in one call: the same draws, the source picked by index (even
        weights) or by bisection (uneven)."""
        if self.cfg.burst_probability:
            return None
        random, makers = self._random, [self._line[s] for s in self._sources]
        n, time_value = len(makers), self._time_value
        if self._even:
            return lambda: makers[int(random() * n)](time_value()).encode()
        cumulative, total, last = self._cumulative, self._total_weight, n - 1
        bisect_right = bisect.bisect_right
        return lambda: makers[min(bisect_right(cumulative, random() * total), last)](time_value()).encode()

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
        """The lines alone, as iterating makes them: with no bursts, duplicates, invalid or
        held-back events, from a loop with nothing else in it (the same draws, the roll
        included), in blocks taken apart in C (a list append per line, not a generator's step)."""
        cfg = self.cfg
        if cfg.burst_probability or cfg.duplicates or cfg.invalid or cfg.out_of_order:
            return (line for _, line, _ in self)
        return itertools.chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[list[bytes]]:
        """lines() in lists of BLOCK, the last one cut short where the clock runs out."""
        cfg = self.cfg
        random, rate, last_start = self._random, cfg.rate, self._last_start_us
        makers = [self._line[s] for s in self._sources]
        n, last, even = len(makers), len(makers) - 1, self._even
        one = makers[0] if n == 1 else None         # its pick is drawn, and needs no arithmetic
        cumulative, total, bisect_right = self._cumulative, self._total_weight, bisect.bisect_right
        stamps, unit = self.stamps, self._unit
        # the usual forms (µs, or whole seconds) written here, in the loop; the rest by the stamps
        inline, micro = not unit and stamps.digits in (0, 6), stamps.digits == 6
        shift, tail = stamps.shift, stamps.tail
        time: int | str
        left = cfg.count
        while left is None or left > 0:
            size = BLOCK if left is None else min(BLOCK, left)
            left = None if left is None else left - size
            block: list[bytes] = []
            append = block.append
            for _ in range(size):
                now = self.now_us + int(-_log(1.0 - random()) / rate * MICROS)
                if now > last_start:
                    yield block                 # what was made before the end is kept
                    raise _past_the_end()
                self.now_us = now
                random()                # the roll that would pick a duplicate or an invalid line
                if inline:
                    at = now + shift
                    if not stamps.start <= at < stamps.end:
                        stamps.enter(at)
                    at -= stamps.start
                    time = (f"{stamps.head}{D3[at // 1000]}{D3[at % 1000]}{tail}" if micro
                            else stamps.head + tail)
                else:
                    time = now // unit if unit else stamps(now)
                if one is not None:
                    random()                    # the pick, of one source
                    append(one(time).encode())
                elif even:
                    append(makers[int(random() * n)](time).encode())
                else:
                    append(makers[min(bisect_right(cumulative, random() * total), last)](time).encode())
            yield block


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


def _as_line(build: Make) -> Callable[[Any], str]:
    """A plan for a built event, which sets its own time."""
    return lambda _time: orjson.dumps(build()).decode()
