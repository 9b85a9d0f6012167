"""Ways to break an event, derived from its pack's own rules, plus lines that are not events at all.

Each rule of the envelope and payload schemas (a required field, a type, an enum or const, a bound,
a length, a pattern, a format, a closed object, an if/then) gives one mutation that breaks it alone.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from evtool.core.pack import Pack, Schema
from evtool.core.plan import resolve
from evtool.core.roles import parse_pointer

Event = dict[str, Any]
Path = tuple[Any, ...]
Holds = Callable[[Any], bool]
EXTRA_FIELD = "x_unexpected_field"
NO_SOURCE = "no.such.source"
# A value of each JSON type: a rule `type: T` is broken by the first one whose type T does not allow.
_OF_TYPE: dict[str, Any] = {
    "string": "7", "integer": 7, "number": 7.5, "boolean": True, "object": {"a": 1}, "array": [1],
    "null": None,
}
_BAD_FORMAT = {
    "date-time": "yesterday", "date": "2026-13-45", "time": "25:61:00", "email": "nobody",
    "hostname": "-bad-.", "ipv4": "999.1.1.1", "ipv6": "not:an:ipv6:::::", "uri": "not a uri",
    "uuid": "not-a-uuid",
}
_NOT_MATCHING = ("", "!", "~ ~", "not matching", "0" * 40, "ZZZZ", "\u00e9")


@dataclass(frozen=True)
class Mutation:
    """Breaks one rule of an event of `source` (None: any event); None when it does not apply to
    this event (an optional field absent, an `if` that does not hold), so the caller tries another."""

    name: str
    source: str | None
    apply: Callable[[random.Random, Event], bytes | None]


def _edit(parent: Path, edit: Callable[[Any], None], holds: Holds | None = None
          ) -> Callable[[random.Random, Event], bytes | None]:
    def apply(rng: random.Random, ev: Event) -> bytes | None:
        target: Any = ev
        for key in parent:
            if not _has(target, key):
                return None
            target = target[key]
        if not isinstance(target, (dict, list)) or (holds is not None and not holds(target)):
            return None
        edit(target)
        return orjson.dumps(ev)

    return apply


def _has(target: Any, key: Any) -> bool:
    if isinstance(target, dict):
        return key in target
    return isinstance(target, list) and isinstance(key, int) and key < len(target)


def _setter(key: Any, value: Any) -> Callable[[Any], None]:
    def edit(target: Any) -> None:
        if isinstance(target, list):
            if not target:
                target.append(value)
            target[key] = value
        else:
            target[key] = value

    return edit


def _dropper(key: str) -> Callable[[Any], None]:
    return lambda target: target.pop(key, None)


def _text(path: Path) -> str:
    return ".".join(str(p) for p in path) or "event"


class RuleWalker:
    """Walks one schema document and yields a mutation for each rule it states."""

    def __init__(self, root: Schema, source: str | None, predicate: Callable[[Schema], Holds]) -> None:
        self.root = root
        self.source = source
        self.predicate = predicate

    def mutation(self, what: str, parent: Path, edit: Callable[[Any], None],
                 holds: Holds | None) -> Mutation:
        name = f"{self.source or 'envelope'}: {what}"
        return Mutation(name, self.source, _edit(parent, edit, holds))

    def walk(self, schema: Any, parent: Path, key: Any, holds: Holds | None = None,
             depth: int = 0) -> Iterator[Mutation]:
        """Rules on the value at parent[key]."""
        if not isinstance(schema, dict) or depth > 16:
            return
        if isinstance(schema.get("$ref"), str):
            yield from self.walk(resolve(self.root, schema["$ref"], ""), parent, key, holds, depth + 1)
            return
        here = _text((*parent, key))
        for value, rule in self.bad_values(schema):
            yield self.mutation(f"{here} {rule}", parent, _setter(key, value), holds)
        yield from self.container(schema, (*parent, key), holds, depth)

    def container(self, schema: Schema, path: Path, holds: Holds | None, depth: int
                  ) -> Iterator[Mutation]:
        """Rules on the members of an object or array at `path`."""
        props: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        for name in schema.get("required", []):
            if isinstance(name, str):
                yield self.mutation(f"{_text((*path, name))} missing (required)", path,
                                    _dropper(name), holds)
        if schema.get("additionalProperties") is False:
            yield self.mutation(f"{_text(path)} has an extra field (additionalProperties)", path,
                                _setter(EXTRA_FIELD, 1), holds)
        for name, sub in props.items():
            yield from self.walk(sub, path, name, holds, depth + 1)
        for branch, when in (("then", True), ("else", False)):
            if isinstance(schema.get("if"), dict) and isinstance(schema.get(branch), dict):
                check = self.predicate({**self._defs(), **schema["if"]})
                cond: Holds = check if when else _negate(check)
                for name, sub in schema[branch].get("properties", {}).items():
                    yield from self.walk(sub, path, name, cond, depth + 1)
        items = schema.get("items")
        if isinstance(items, dict):
            yield from self.walk(items, path, 0, None, depth + 1)
        for bound, delta in (("minItems", -1), ("maxItems", 1)):
            n = schema.get(bound)
            if type(n) is int and n + delta >= 0:
                yield self.mutation(f"{_text(path)} with {n + delta} items ({bound})", path[:-1],
                                    _setter(path[-1], [None] * (n + delta)) if path else _noop,
                                    None)

    def _defs(self) -> Schema:
        return {k: self.root[k] for k in ("definitions", "$defs") if k in self.root}

    def bad_values(self, s: Schema) -> Iterator[tuple[Any, str]]:
        """(value, rule) pairs: each value breaks that rule of `s`."""
        kinds = s.get("type")
        kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
        if kinds:
            allowed = {*kinds, "integer"} if "number" in kinds else set(kinds)
            wrong = next((k for k in _OF_TYPE if k not in allowed), None)
            if wrong is not None:
                yield _OF_TYPE[wrong], f"of the wrong type (type {'/'.join(kinds)})"
            if "integer" in kinds and "number" not in kinds and wrong != "number":
                yield 1.5, "not an integer (type integer)"
        if isinstance(s.get("enum"), list) and s["enum"]:
            yield _outside(s["enum"]), "outside its enum"
        if "const" in s:
            yield _outside([s["const"]]), "not its const"
        yield from _bounds(s)
        pattern = s.get("pattern")
        if isinstance(pattern, str):
            bad = next((t for t in _NOT_MATCHING if not re.search(pattern, t)), None)
            if bad is not None:
                yield bad, "breaking its pattern"
        if s.get("format") in _BAD_FORMAT:
            yield _BAD_FORMAT[s["format"]], f"not a {s['format']} (format)"


def _negate(check: Holds) -> Holds:
    return lambda value: not check(value)


def _noop(_target: Any) -> None:
    """Nothing to edit."""


def _outside(allowed: list[Any]) -> Any:
    if all(isinstance(v, str) for v in allowed):
        return "not-" + max(allowed, key=len)
    if all(type(v) in (int, float) for v in allowed):
        return max(allowed) + 1000
    return "not-one-of-them"


def _bounds(s: Schema) -> Iterator[tuple[Any, str]]:
    low: Any = s.get("minimum")
    high: Any = s.get("maximum")
    if type(low) in (int, float):
        yield (low if s.get("exclusiveMinimum") is True else low - 1), "below its minimum"
    if type(high) in (int, float):
        yield (high if s.get("exclusiveMaximum") is True else high + 1), "above its maximum"
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if type(s.get(key)) in (int, float):
            yield s[key], f"at its {key}"
    for key, delta in (("minLength", -1), ("maxLength", 1)):
        n = s.get(key)
        if type(n) is int and n + delta >= 0:
            yield "a" * (n + delta), f"{n + delta} characters long ({key})"


def _raw(data: bytes) -> Mutation:
    return Mutation(f"malformed: {data[:20]!r}", None, lambda rng, ev: data)


def _truncated(rng: random.Random, ev: Event) -> bytes:
    line = orjson.dumps(ev)
    return line[: 1 + int(rng.random() * (len(line) - 2))]


def _nul(rng: random.Random, ev: Event) -> bytes:
    line = orjson.dumps(ev)
    return line[:30] + b"\x00" + line[30:]


def _bad_utf8(rng: random.Random, ev: Event) -> bytes:
    line = orjson.dumps(ev)
    return line[:2] + b"\xff\xfe" + line[2:]


MALFORMED: tuple[Mutation, ...] = (
    _raw(b"this is not json"),
    Mutation("malformed: truncated", None, _truncated),
    _raw(b"[1, 2, 3]"),
    _raw(b"42"),
    _raw(b"null"),
    _raw(b"{}"),
    Mutation("malformed: not UTF-8", None, _bad_utf8),
    Mutation("malformed: a NUL byte", None, _nul),
)


def _top(pointer: str) -> str:
    return parse_pointer(pointer)[0]


def mutations_for(pack: Pack, predicate: Callable[[Schema], Holds]) -> tuple[Mutation, ...]:
    """One mutation per rule of the pack's envelope and payload schemas, then the malformed lines."""
    roles = pack.roles
    found: list[Mutation] = []
    if roles.payload:
        found += RuleWalker(pack.envelope, None, predicate).container(pack.envelope, (), None, 0)
    for role in ("source", "payload"):
        pointer = getattr(roles, role)
        if pointer and _top(pointer) not in pack.envelope.get("required", []):
            *parent, last = parse_pointer(pointer)
            found.append(Mutation(f"envelope: {role} missing (required)", None,
                                  _edit(tuple(parent), _dropper(last))))
    if roles.source is not None and roles.unknown_sources == "reject":
        *parent, last = parse_pointer(roles.source)
        found.append(Mutation("envelope: source unknown to the pack", None,
                              _edit(tuple(parent), _setter(last, NO_SOURCE))))
    for source in pack.sources:
        walker = RuleWalker(pack.payloads[source], source, predicate)
        if roles.payload:
            *parent, last = parse_pointer(roles.payload)
            found.extend(walker.walk(pack.payloads[source], tuple(parent), last))
        else:
            found.extend(walker.container(pack.payloads[source], (), None, 0))
    return (*found, *MALFORMED)
