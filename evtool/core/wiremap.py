"""The small mapping language of wire.json: a field's value is a literal, a JSON Pointer into the
record with an optional named transform, or the wall clock. Closed: nothing a pack writes runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from evtool.core.instant import TimeError, instant_us, iso_us
from evtool.core.roles import MISSING, parse_pointer, resolve

Transform = Callable[[Any], Any]


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not all(type(n) is int and n >= 0 for n in value.values()):
        raise ValueError("must map names to counts (integers >= 0)")
    return value


def _nested(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict) or not all(
            isinstance(by, dict) and all(type(n) is int and n >= 0 for n in by.values())
            for by in value.values()):
        raise ValueError("must map names to {name: count}")
    return value


def _sum(value: Any) -> int:
    if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()) and value:
        return sum(sum(by.values()) for by in _nested(value).values())
    return sum(_counts(value).values())


def _column_sums(value: Any) -> dict[str, int]:
    sums: dict[str, int] = {}
    for by in _nested(value).values():
        for name, n in by.items():
            sums[name] = sums.get(name, 0) + n
    return sums


def _row_sums(value: Any) -> dict[str, int]:
    return {name: sum(by.values()) for name, by in _nested(value).items()}


def _utc_time(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(f"{value!r} is not a time")
    try:
        try:
            return iso_us(instant_us(value))
        except TimeError:
            return iso_us(instant_us(value + "Z"))
    except TimeError as exc:
        raise ValueError(str(exc)) from None


def _day_start(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("is not a date")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return f"{value}T00:00:00Z"


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _json(value: Any) -> Any:
    """Text that holds JSON as the value it holds (nested deeper than orjson writes: the text)."""
    if type(value) is not str:
        return value
    try:
        parsed = orjson.loads(value)
        orjson.dumps(parsed)
    except (orjson.JSONDecodeError, TypeError):
        return value
    return parsed


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(type(i) is str for i in value):
        raise ValueError("must be a list of strings")
    return value


TRANSFORMS: dict[str, Transform] = {
    "utc_time": _utc_time, "day_start": _day_start, "counts": _counts, "nested_counts": _nested,
    "sum": _sum, "column_sums": _column_sums, "row_sums": _row_sums, "text": str,
    "json_text": _json_text, "json": _json, "strings": _strings,
}


def utc_seconds() -> str:
    """The wall clock, UTC, to the second."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Expr:
    """One field's value on the wire."""

    literal: Any = None
    pointer: tuple[str, ...] | None = None
    transform: str | None = None
    default: Any = MISSING
    clock: bool = False
    shown: str = ""

    def value(self, record: dict[str, Any], clock: Callable[[], str] | None) -> Any:
        if self.clock:
            return (clock or utc_seconds)()
        if self.pointer is None:
            return self.literal
        found = resolve(record, self.pointer)
        if found is MISSING:
            if self.default is not MISSING:
                return self.default
            raise ValueError(f"{self.shown}: missing")
        if self.transform is None:
            return found
        try:
            return TRANSFORMS[self.transform](found)
        except ValueError as exc:
            raise ValueError(f"{self.shown}: {exc}") from None


def compile_expr(doc: Any) -> Expr:
    """An Expr from wire.json's form (already checked against its JSON Schema)."""
    if isinstance(doc, dict) and "from" in doc:
        where = doc["from"]
        return Expr(pointer=parse_pointer(where), transform=doc.get("as"),
                    default=doc.get("default", MISSING), shown=where.lstrip("/") or "the record")
    if isinstance(doc, dict) and "clock" in doc:
        return Expr(clock=True, shown="the clock")
    if isinstance(doc, dict) and "literal" in doc:
        return Expr(literal=doc["literal"], shown=orjson.dumps(doc["literal"]).decode())
    return Expr(literal=doc, shown=orjson.dumps(doc).decode())
