"""A JSON Schema compiled once into a function that makes values it accepts.

Precedence for each schema: `x-generate` (keywords laid over the schema's own, for generation
only), then `examples`, `const`, `enum`, then the type with its bounds, formats and patterns.
"""

from __future__ import annotations

import copy
import math
import random
import string
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

from evtool.core.builders import (
    Choice,
    Coin,
    Const,
    Grid,
    IntRange,
    Make,
    When,
    dict_builder,
    line_builder,
)
from evtool.core.checks import Check, simple_predicate
from evtool.core.lineshape import Unsupported as Unmirrored
from evtool.core.lineshape import if_then
from evtool.core.pack import GENERATE, PackError, Schema
from evtool.core.patterns import linear
from evtool.core.regexgen import Unsupported, plain_text, regex_generator
from evtool.core.schema_rules import follow
from evtool.core.stamps import iso_date

MAX_DEPTH = 24
_LETTERS = string.ascii_lowercase
_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")


class Clock(Protocol):
    """Where the simulated time and the seeded ids come from."""

    now_us: int

    @property
    def uuid(self) -> Callable[[], str]: ...


def for_generation(schema: Any) -> Any:
    """The schema with its `x-generate` keywords laid over its own."""
    if isinstance(schema, dict) and isinstance(schema.get(GENERATE), dict):
        merged = {k: v for k, v in schema.items() if k != GENERATE}
        merged.update(schema[GENERATE])
        return merged
    return schema


def resolve(root: Schema, ref: str, where: str) -> Any:
    """A '#/a/b' reference inside `root` (references elsewhere were refused at load)."""
    try:
        return follow(root, ref)
    except LookupError:
        raise PackError(f"{where}: $ref {ref!r} points at nothing") from None


class Planner:
    """Compiles the schemas of one document (its root resolves `$ref`s)."""

    def __init__(self, root: Schema, rng: random.Random, clock: Clock, where: str,
                 compile_check: Callable[[Schema], Check]) -> None:
        self.root = root
        self.rng = rng
        self.clock = clock
        self.where = where
        self.compile_check = compile_check

    def value(self, schema: Any, path: str = "", depth: int = 0) -> Make:
        if depth > MAX_DEPTH:
            raise PackError(f"{self.where}: {path or 'the schema'} nests too deep to generate")
        if schema is True or schema == {} or schema is None:
            return self.word(3, 8)
        if schema is False:
            raise PackError(f"{self.where}: {path} allows no value at all")
        s = for_generation(schema)
        if "$ref" in s:
            return self.value(resolve(self.root, s["$ref"], self.where), path, depth + 1)
        if isinstance(s.get("examples"), list) and s["examples"]:
            return self.choice(s["examples"])
        if "const" in s:
            return self.choice([s["const"]])
        if isinstance(s.get("enum"), list) and s["enum"]:
            return self.choice(s["enum"])
        if isinstance(s.get("allOf"), list):
            merged = {k: v for k, v in s.items() if k != "allOf"}
            for part in s["allOf"]:
                merged = _merge(merged, for_generation(part))
            return self.value(merged, path, depth + 1)
        for key in ("anyOf", "oneOf"):
            if isinstance(s.get(key), list) and s[key]:
                rest = {k: v for k, v in s.items() if k != key}
                return self.value(_merge(rest, for_generation(s[key][0])), path, depth + 1)
        kind = _type_of(s)
        if kind == "object":
            return self.object(s, path, depth)
        if kind == "array":
            return self.array(s, path, depth)
        if kind == "string":
            return self.string(s, path)
        if kind in ("integer", "number"):
            return self.number(s, kind == "integer", path)
        if kind == "boolean":
            return Coin(self.rng.random)
        if kind == "null":
            return lambda: None
        return self.word(3, 8)

    def choice(self, options: list[Any]) -> Make:
        rand, n = self.rng.random, len(options)
        if all(not isinstance(o, (dict, list)) for o in options):
            return Const(options[0]) if n == 1 else Choice(list(options), rand)
        return lambda: copy.deepcopy(options[int(rand() * n)])

    def word(self, low: int, high: int) -> Make:
        rand, span = self.rng.random, high - low + 1
        return lambda: "".join([_LETTERS[int(rand() * 26)] for _ in range(low + int(rand() * span))])

    def string(self, s: Schema, path: str) -> Make:
        fmt, pattern = s.get("format"), s.get("pattern")
        if fmt in _FORMATS:
            return _FORMATS[fmt](self)
        if isinstance(pattern, str):
            return self.pattern(pattern, path)
        low = max(int(s.get("minLength", 3)), 0)
        high = max(int(s.get("maxLength", low + 8)), low)
        return self.word(low, min(high, low + 12))

    def pattern(self, pattern: str, path: str) -> Make:
        """A UUID-shaped pattern takes the seeded UUIDs; any other is generated from its tree."""
        try:
            compiled = linear(pattern)
        except PackError as exc:
            raise PackError(f"{self.where}: {path or 'a string'}: {exc}") from None
        samples = [self.clock.uuid() for _ in range(8)]
        if all(compiled.search(u) for u in samples):
            return self.clock.uuid
        try:
            make = regex_generator(pattern, self.rng)
        except Unsupported as exc:
            raise PackError(f"{self.where}: cannot generate {path or 'a string'} from pattern "
                            f"{pattern!r} ({exc}); give it examples or x-generate") from None
        if not all(compiled.search(make()) for _ in range(16)):
            raise PackError(f"{self.where}: cannot generate {path or 'a string'} from pattern "
                            f"{pattern!r}; give it examples or x-generate")
        return make

    def number(self, s: Schema, integer: bool, path: str) -> Make:
        low, high = _bounds(s, integer)
        step = s.get("multipleOf")
        rand = self.rng.random
        if isinstance(step, (int, float)) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            if first > last:
                raise PackError(f"{self.where}: no multiple of {step} fits the bounds of {path}")
            digits = max(0, -math.floor(math.log10(step))) if step < 1 else 0
            span = last - first + 1
            if integer or (float(step).is_integer() and digits == 0):
                return lambda: int((first + int(rand() * span)) * step)
            largest = max(abs(low), abs(high))
            if step == 1 / 10 ** digits and digits <= 4 and largest < 1e15:
                # n * step rounded to its places is the double nearest n / 10**places, which one
                # division makes (correctly rounded): the same numbers, inlined in the line plan
                return Grid(first, span, 10 ** digits, rand)
            return _shortest(lambda: round((first + int(rand() * span)) * step, digits), digits, largest)
        if integer:
            ilow, span = math.ceil(low), math.floor(high) - math.ceil(low) + 1
            if span < 1:
                raise PackError(f"{self.where}: no integer fits the bounds of {path}")
            return IntRange(ilow, span, rand)
        first, last = _grid_step(low, 1), _grid_step(high, -1)
        if first > last:
            raise PackError(f"{self.where}: no number of 4 places fits the bounds of {path}")
        if max(abs(low), abs(high)) < 1e15:
            return Grid(first, last - first + 1, GRID, rand)
        width = high - low
        return lambda: round(low + rand() * width, 4)

    def object(self, s: Schema, path: str, depth: int) -> Make:
        props: dict[str, Any] = s["properties"] if isinstance(s.get("properties"), dict) else {}
        required = [r for r in s.get("required", []) if isinstance(r, str)]
        fields: list[tuple[str, Make, bool]] = []
        for name in [*props, *(r for r in required if r not in props)]:
            make = self.value(props.get(name, {}), f"{path}.{name}".lstrip("."), depth + 1)
            fields.append((name, make, name in required))
        plain = dict_builder(fields, self.rng.random)
        conditions = self.conditions(s, path, depth)
        if not conditions:
            setattr(plain, "line", line_builder(fields, self.rng.random, lambda _make: False))  # noqa: B010
            return plain

        def build() -> dict[str, Any]:
            obj: dict[str, Any] = plain()
            for check, branches in conditions:
                for name, make in branches[check(obj)]:
                    obj[name] = make()
            return obj

        when = _coin_then_const(s, fields, conditions)
        if when is not None:
            setattr(build, "line", line_builder(fields, self.rng.random, lambda _make: False,  # noqa: B010
                                                when=when))
        return build

    def conditions(self, s: Schema, path: str, depth: int
                   ) -> list[tuple[Check, dict[bool, list[tuple[str, Make]]]]]:
        """if/then/else: when the `if` holds, the `then` properties are made again from `then`."""
        if not isinstance(s.get("if"), dict):
            return []
        check = simple_predicate(s["if"]) or self.compile_check({**self.root_defs(), **s["if"]})
        base = s.get("properties", {}) if isinstance(s.get("properties"), dict) else {}
        branches: dict[bool, list[tuple[str, Make]]] = {}
        for holds, key in ((True, "then"), (False, "else")):
            sub = for_generation(s.get(key, {}))
            props = sub.get("properties", {}) if isinstance(sub, dict) else {}
            branches[holds] = [
                (n, self.value(_merge(for_generation(base.get(n, {})), for_generation(p)),
                               f"{path}.{n}", depth + 1))
                for n, p in props.items()
            ]
        return [(check, branches)]

    def root_defs(self) -> Schema:
        return {k: self.root[k] for k in ("definitions", "$defs") if k in self.root}

    def array(self, s: Schema, path: str, depth: int) -> Make:
        items = s.get("prefixItems", s.get("items"))
        if isinstance(items, list):
            makes = [self.value(i, f"{path}[{n}]", depth + 1) for n, i in enumerate(items)]
            return lambda: [m() for m in makes]
        one = self.value(items if isinstance(items, dict) else {}, f"{path}[]", depth + 1)
        low = int(s.get("minItems", 1))
        high = min(int(s.get("maxItems", low + 3)), low + 3)
        rand, span, unique = self.rng.random, max(high - low + 1, 1), bool(s.get("uniqueItems"))

        def build() -> list[Any]:
            want = low + int(rand() * span)
            if not unique:
                return [one() for _ in range(want)]
            out: list[Any] = []
            for _ in range(want * 8):
                if len(out) >= want:
                    break
                value = one()
                if value not in out:
                    out.append(value)
            return out

        return build


def _coin_then_const(s: Schema, fields: list[tuple[str, Make, bool]],
                     conditions: list[tuple[Check, dict[bool, list[tuple[str, Make]]]]]) -> When | None:
    """The one if/then lineshape mirrors (`if_then`), when a line plan can write it: A a
    required coin, B a later required field written by one replacement field, B's `then` a
    constant as drawn."""
    props = s.get("properties")
    if len(conditions) != 1 or "else" in s or not isinstance(props, dict):
        return None
    try:
        key, want, then_key, value = if_then(s["if"], s.get("then"), props)
    except Unmirrored:
        return None
    order = {name: (at, make, required) for at, (name, make, required) in enumerate(fields)}
    (_, then), = conditions[0][1][True]
    if key not in order or not isinstance(then, Const) or then.value != value \
            or type(then.value) is not type(value):
        return None
    (at, coin, a_required), (bt, drawn, b_required) = order[key], order[then_key]
    if not (a_required and b_required and at < bt and isinstance(coin, Coin)
            and isinstance(drawn, (Coin, Choice, IntRange))):
        return None
    return key, want, then_key, value


def _merge(base: Schema, extra: Any) -> Schema:
    if not isinstance(extra, dict):
        return base
    merged = {**base, **extra}
    if isinstance(base.get("properties"), dict) and isinstance(extra.get("properties"), dict):
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if isinstance(base.get("required"), list) and isinstance(extra.get("required"), list):
        merged["required"] = list(dict.fromkeys(base["required"] + extra["required"]))
    return merged


def _type_of(s: Schema) -> str | None:
    kind = s.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind in _TYPES:
        return str(kind)
    if "properties" in s or "required" in s:
        return "object"
    if "items" in s or "prefixItems" in s:
        return "array"
    if any(k in s for k in ("pattern", "format", "minLength", "maxLength")):
        return "string"
    if any(k in s for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return None


def _bounds(s: Schema, integer: bool) -> tuple[float, float]:
    """The inclusive range to draw from; open ends get a span of 100."""
    low: Any = s.get("minimum")
    high: Any = s.get("maximum")
    tiny = 1 if integer else 1e-4
    ex_low, ex_high = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if ex_low is True and low is not None:
        low += tiny
    elif isinstance(ex_low, (int, float)) and not isinstance(ex_low, bool):
        low = ex_low + tiny if low is None else max(low, ex_low + tiny)
    if ex_high is True and high is not None:
        high -= tiny
    elif isinstance(ex_high, (int, float)) and not isinstance(ex_high, bool):
        high = ex_high - tiny if high is None else min(high, ex_high - tiny)
    if low is None and high is None:
        low, high = 0, 100
    elif low is None:
        low = high - 100
    elif high is None:
        high = low + 100
    return float(low), float(high)


GRID = 10_000          # numbers gen draws have 4 places


def _grid_step(bound: float, way: int) -> int:
    """The step of the grid nearest `bound` on the inside (`way` 1 for a lower bound, -1 for an
    upper): bound * GRID is itself rounded, so the step is checked as a double, as a validator
    compares it."""
    step = math.ceil(bound * GRID) if way > 0 else math.floor(bound * GRID)
    while (step - way) / GRID * way >= bound * way:      # one further out is still inside
        step -= way
    while step / GRID * way < bound * way:               # outside: one further in
        step += way
    return step


def _shortest(make: Make, digits: int, largest: float) -> Make:
    """A float maker marked where Python's repr writes what orjson does: rounded to at most 4
    places (so nothing below 1e-4 but zero) and under 1e15 (no exponent either way)."""
    if digits <= 4 and largest < 1e15:
        setattr(make, "repr_is_json", True)  # noqa: B010
    return make


def _clock_text(clock: Clock, form: Callable[[datetime], str], every_us: int) -> Make:
    """The clock's time as `form` writes it, once per `every_us` (a second, or a day for a date)."""
    last: list[Any] = [None, ""]

    def make() -> str:
        step = clock.now_us // every_us
        if step != last[0]:
            at = datetime.fromtimestamp(step * every_us // 1_000_000, tz=timezone.utc)
            last[0], last[1] = step, form(at)
        return str(last[1])
    return plain_text(make)


_FORMATS: dict[str, Callable[[Planner], Make]] = {
    "uuid": lambda p: p.clock.uuid,
    "date-time": lambda p: _clock_text(p.clock, lambda at: f"{iso_date(at)}T{at:%H:%M:%S}Z", 1_000_000),
    "date": lambda p: _clock_text(p.clock, iso_date, 86_400_000_000),
    "time": lambda p: _clock_text(p.clock, lambda at: f"{at:%H:%M:%S}Z", 1_000_000),
    "email": lambda p: (lambda w: lambda: f"{w()}@example.org")(p.word(4, 9)),
    "hostname": lambda p: (lambda w: lambda: f"{w()}.example.org")(p.word(3, 8)),
    "uri": lambda p: (lambda w: lambda: f"https://example.org/{w()}")(p.word(3, 8)),
    "ipv4": lambda p: (lambda r: lambda: ".".join(str(int(r() * 254) + 1) for _ in range(4)))(
        p.rng.random),
}
