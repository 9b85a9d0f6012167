"""What a sample of JSON values says about their schema: one Profile per place in the events,
bounded (distinct values tracked up to a cap), turned into a JSON Schema with the rules the
sample supports: types, required keys, enums, formats, string shapes, bounds and lengths."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from evtool.core.instant import is_instant

# A string field is an enum when it takes at most ENUM_MAX distinct values and each is seen
# ENUM_REPEAT times on average: 9,000 `corr-NNNN` ids are a pattern, five regions an enum.
ENUM_MAX = 24
ENUM_REPEAT = 4
DISTINCT_CAP = 256                      # distinct values remembered per place (bounded memory)
# objects and arrays deeper than this are checked for their type alone: a pack loads schemas
# 64 deep and gen makes values 24 deep, and a sample 1000 deep stopped the profile's recursion
MAX_NESTING = 16
EXAMPLES = 3
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")
_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-"
                   r"[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


_CLASS = {"d": "[0-9]", "l": "[a-z]", "u": "[A-Z]", "x": "[0-9a-f]"}
_SPECIAL = set(".^$*+?()[]{}|\\/")


Run = tuple[str, str]                   # (class, the text of the run)


_RUNS = re.compile(r"[0-9]+|[a-z]+|[A-Z]+|.", re.S).findall
_HEX_RUNS = re.compile(r"[0-9a-f]+|[a-z]+|[A-Z]+|.", re.S).findall


def _class(run: str, hex_runs: bool) -> str:
    first = run[0]
    if hex_runs and ("0" <= first <= "9" or "a" <= first <= "f"):
        return "x"
    if "0" <= first <= "9":
        return "d"
    if "a" <= first <= "z":
        return "l"
    if "A" <= first <= "Z":
        return "u"
    return first


def shape(text: str, hex_runs: bool = False) -> tuple[Run, ...]:
    """A string's runs of one character class: 'corr-6788' -> (l,corr)(-,-)(d,6788); with
    hex_runs, digits and a-f together make one run (UUIDs, hashes)."""
    return tuple((_class(run, hex_runs), run) for run in (_HEX_RUNS if hex_runs else _RUNS)(text))


def _atom(kind: str) -> str:
    return _CLASS.get(kind) or ("\\" + kind if kind in _SPECIAL else kind)


@dataclass
class Shapes:
    """The one run structure every string of a place shares: each run's class, its length range,
    and its text where every string has the same letters there ('corr-', a time's 'T' and 'Z')."""

    runs: list[tuple[str, int, int, str | None]] | None = None
    broken: bool = False
    hex_runs: bool = False
    _holds: Any = None             # the current pattern, compiled: a value it takes changes nothing

    def see_text(self, text: str) -> None:
        """Widen the shape to take `text` (patterns only widen, so what one took the last takes)."""
        if self.broken or (self._holds is not None and self._holds(text)):
            return
        self.see(shape(text, self.hex_runs))
        pattern = self.pattern()
        self._holds = re.compile(pattern).fullmatch if pattern else None

    def see(self, found: tuple[Run, ...]) -> None:
        if self.broken:
            return
        if self.runs is None:
            self.runs = [(k, len(t), len(t), t) for k, t in found]
        elif len(found) != len(self.runs) or any(k != r[0] for (k, _), r in zip(found, self.runs,
                                                                                  strict=True)):
            self.broken = True
        else:
            self.runs = [(k, min(lo, len(t)), max(hi, len(t)), same if same == t else None)
                         for (k, t), (_, lo, hi, same) in zip(found, self.runs, strict=True)]

    def pattern(self) -> str | None:
        if self.broken or not self.runs:
            return None
        parts = []
        for kind, lo, hi, same in self.runs:
            if same is not None and kind not in ("d", "x"):     # digits vary by nature: a class
                parts.append("".join(_atom(c) if c in _SPECIAL else c for c in same))
                continue
            count = "" if lo == hi == 1 else f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"
            parts.append(_atom(kind) + count)
        return "^" + "".join(parts) + "$"


@dataclass
class Profile:
    """What the values seen at one place were."""

    seen: int = 0
    types: dict[str, int] = field(default_factory=dict)
    distinct: dict[Any, int] = field(default_factory=dict)
    overflow: bool = False
    low: float = math.inf
    high: float = -math.inf
    short: int = 1 << 30
    long: int = 0
    possible: set[str] = field(default_factory=lambda: set(FORMATS))
    versions: set[str] = field(default_factory=set)      # of UUIDs seen
    shapes: Shapes = field(default_factory=Shapes)
    hexes: Shapes = field(default_factory=lambda: Shapes(hex_runs=True))
    keys: dict[str, Profile] = field(default_factory=dict)
    objects: int = 0
    items: Profile | None = None
    lengths: tuple[int, int] = (1 << 30, 0)
    depth: int = 0                                        # objects and arrays around this place

    def see(self, value: Any) -> None:
        self.seen += 1
        kind = _json_type(value)
        self.types[kind] = self.types.get(kind, 0) + 1
        new = self._remember(value) if kind in ("string", "integer", "number", "boolean") else True
        if kind == "string":
            self._string(value, new)
        elif kind in ("integer", "number"):
            self.low, self.high = min(self.low, value), max(self.high, value)
        elif kind == "object":
            self.objects += 1
            if self.depth >= MAX_NESTING:
                return
            keys = self.keys
            for key, sub in value.items():
                place = keys.get(key)
                if place is None:
                    place = keys[key] = Profile(depth=self.depth + 1)
                place.see(sub)
        elif kind == "array":
            self.lengths = (min(self.lengths[0], len(value)), max(self.lengths[1], len(value)))
            if self.depth >= MAX_NESTING:
                return
            self.items = self.items or Profile(depth=self.depth + 1)
            for item in value:
                self.items.see(item)

    def _remember(self, value: Any) -> bool:
        """Whether the value is new here (a value seen before says nothing more)."""
        key = (type(value).__name__, value)
        if key in self.distinct:
            self.distinct[key] += 1
            return False
        if len(self.distinct) < DISTINCT_CAP:
            self.distinct[key] = 1
        else:
            self.overflow = True
        return True

    def _string(self, text: str, new: bool) -> None:
        self.short, self.long = min(self.short, len(text)), max(self.long, len(text))
        if not new:
            return
        for name in list(self.possible):          # a format one value broke is never checked again
            if not FORMATS[name](text):
                self.possible.discard(name)
        if "uuid" in self.possible:
            self.versions.add(text[14])
        self.shapes.see_text(text)
        self.hexes.see_text(text)

    @property
    def strings(self) -> int:
        return self.types.get("string", 0)

    def all_of(self, fmt: str) -> bool:
        return self.strings > 0 and fmt in self.possible

    def is_enum(self) -> bool:
        values = len(self.distinct)
        return not self.overflow and 0 < values <= ENUM_MAX and self.seen >= ENUM_REPEAT * values

    def schema(self, closed: bool) -> dict[str, Any]:
        """The JSON Schema this place's values support."""
        types = set(self.types)
        if types == {"integer", "number"}:
            types = {"number"}
        if len(types) != 1:
            return {"type": sorted(types)} if types else {}
        kind = types.pop()
        if kind == "object":
            return self._object(closed)
        if kind == "array":
            out: dict[str, Any] = {"type": "array", "minItems": self.lengths[0], "maxItems": self.lengths[1]}
            if self.items is not None and self.items.seen:
                out["items"] = self.items.schema(closed)
            return out
        if kind in ("integer", "number"):
            return self._number(kind)
        if kind == "string":
            return self._text()
        return {"type": kind}

    def _object(self, closed: bool) -> dict[str, Any]:
        if self.depth >= MAX_NESTING:
            return {"type": "object"}
        props = {k: p.schema(closed) for k, p in self.keys.items()}
        out: dict[str, Any] = {"type": "object",
                               "required": [k for k, p in self.keys.items() if p.seen == self.objects],
                               "properties": props}
        if closed:
            out["additionalProperties"] = False
        return out

    def _number(self, kind: str) -> dict[str, Any]:
        if self.is_enum() and kind == "integer" and len(self.distinct) <= 6:
            return {"type": kind, "enum": sorted(v for (_, v) in self.distinct)}
        low, high = (int(self.low), int(self.high)) if kind == "integer" else \
            (math.floor(self.low), math.ceil(self.high))
        return {"type": kind, "minimum": low, "maximum": high}

    def _text(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        values = sorted(v for (_, v) in self.distinct)
        if self.all_of("date-time") or self.all_of("naive") or self.all_of("date"):
            if self.all_of("date-time") or self.all_of("date"):
                out["format"] = "date-time" if self.all_of("date-time") else "date"
            pattern = self.shapes.pattern()
            if pattern:
                out["pattern"] = pattern
            return out
        if self.is_enum():
            out["enum"] = values
            return out
        for fmt in ("uuid", "email", "uri", "ipv4"):
            if self.all_of(fmt):
                pattern = self._uuid_pattern() if fmt == "uuid" else None
                if pattern:
                    out["pattern"] = pattern
                else:
                    out["format"] = fmt
                return out
        pattern = self.shapes.pattern() if not self.shapes.broken else self.hexes.pattern()
        if pattern:
            out["pattern"] = pattern
            return out
        out["minLength"], out["maxLength"] = self.short, self.long
        out["examples"] = values[:EXAMPLES]
        return out

    def _uuid_pattern(self) -> str | None:
        """Lower-case UUIDs of one version (v4, say) as that version's pattern."""
        if self.hexes.pattern() is None or len(self.versions) != 1:
            return self.hexes.pattern()
        version = next(iter(self.versions))
        return f"^[0-9a-f]{{8}}-[0-9a-f]{{4}}-{version}[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}$"

    def describe(self) -> str:
        """What was inferred, in a few words, for the report."""
        schema = self.schema(closed=True)
        said = [f"{self.seen} seen"]
        for key in ("type", "format", "pattern", "minimum", "maximum", "minLength", "maxLength"):
            if key in schema:
                said.append(f"{key} {schema[key]}")
        if "enum" in schema:
            said.append(f"enum of {len(schema['enum'])}")
        return ", ".join(said)


def _naive(text: str) -> bool:
    return len(text) >= 19 and text[10] in "Tt " and not is_instant(text) and is_instant(text + "Z")


def _timeish(text: str) -> bool:
    return len(text) >= 19 and text[4] == "-" and is_instant(text)


# what each format asks of a string (cheap tests first: most strings are none of them)
FORMATS: dict[str, Any] = {
    "date-time": _timeish, "naive": _naive, "date": lambda t: len(t) == 10 and bool(_DATE.match(t)),
    "email": lambda t: "@" in t and bool(_EMAIL.match(t)),
    "uri": lambda t: "://" in t and bool(_URI.match(t)),
    "ipv4": lambda t: "." in t and bool(_IPV4.match(t)),
    "uuid": lambda t: len(t) == 36 and bool(_UUID.match(t)),
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
