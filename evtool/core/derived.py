"""Checks for the records stages derive (window, metric, alert, deadletter) before anyone trusts them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from evtool.core.checks import Check, Invalid, compile_schema, describe
from evtool.core.instant import bound_us
from evtool.core.pack import Schema
from evtool.core.quickcheck import quick

Invariant = Callable[[dict[str, Any]], str | None]


def _later(_value: Any) -> bool:
    """date-time in a derived record: the invariants parse it (once) and say what is wrong."""
    return True


def _span(rec: dict[str, Any]) -> str | None:
    try:
        start, end = bound_us(rec["window_start"]), bound_us(rec["window_end"])
    except ValueError as exc:
        return str(exc)
    return None if start < end else "window_end must be after window_start"


def _sum(values: Any) -> int:
    return sum(values.values())


def _window(rec: dict[str, Any]) -> str | None:
    total = rec["total"]
    if len(rec["event_ids"]) != total:
        return f"total {total} but {len(rec['event_ids'])} event_ids"
    for field in ("by_source", "by_region"):
        if _sum(rec[field]) != total:
            return f"{field} adds up to {_sum(rec[field])}, not total {total}"
    cells = rec["by_region_source"]
    if cells.keys() != rec["by_region"].keys():
        return "by_region_source and by_region name different regions"
    for region, by_source in cells.items():
        if _sum(by_source) != rec["by_region"][region]:
            return f"by_region_source.{region} adds up to {_sum(by_source)}, not by_region's"
    return _span(rec)


def _metric(rec: dict[str, Any]) -> str | None:
    if rec["date"] != rec["window_start"][:10]:
        return f"date {rec['date']!r} is not the UTC date of window_start {rec['window_start']!r}"
    total = rec["total"]
    if _sum(rec["counts"]) != total:
        return f"counts add up to {_sum(rec['counts'])}, not total {total}"
    if len(rec["input_event_ids"]) != total:
        return f"total {total} but {len(rec['input_event_ids'])} input_event_ids"
    return _span(rec)


def _alert(rec: dict[str, Any]) -> str | None:
    try:
        for field in ("window_start", "window_end"):
            if field in rec:
                bound_us(rec[field])
    except ValueError as exc:
        return str(exc)
    return None


INVARIANTS: dict[str, Invariant] = {"window": _window, "metric": _metric, "alert": _alert}


_STRINGS = {"type": "array", "items": {"type": "string"}}


def _split_id_lists(schema: Schema) -> tuple[Schema, list[str]]:
    """The schema without its arrays of strings (id lists, 50,000 long), and their names: a
    compiled schema checks each item in Python, `_all_strings` does it at C speed."""
    props = schema.get("properties", {})
    lists = [name for name, sub in props.items() if sub == _STRINGS]
    if not lists:
        return schema, []
    kept = {name: sub for name, sub in props.items() if name not in lists}
    return {**schema, "properties": {**kept, **{n: {"type": "array"} for n in lists}}}, lists


def _all_strings(values: list[Any]) -> bool:
    return set(map(type, values)) <= {str}


class DerivedChecker:
    """Says why a derived record of a known kind cannot be trusted; None for good and unknown kinds.

    Instants are parsed once, by the invariants (the schemas' date-time format defers to them).
    """

    def __init__(self, schemas: Mapping[str, Schema]) -> None:
        self._checks: dict[str, Check] = {}
        self._id_lists: dict[str, list[str]] = {}
        self._quick: dict[str, Callable[[Any], bool] | None] = {}
        for kind, schema in schemas.items():
            lean, lists = _split_id_lists(schema)
            self._checks[kind] = compile_schema(lean, f"records/{kind}.json", {"date-time": _later})
            self._id_lists[kind] = lists
            self._quick[kind] = quick(lean, lean)

    def problem(self, record: dict[str, Any]) -> str | None:
        kind = record.get("kind")
        if type(kind) is not str:
            return None
        check = self._checks.get(kind)
        if check is None:
            return None
        fast = self._quick[kind]
        if fast is None or not fast(record):
            try:
                check(record)
            except Invalid as exc:
                return describe(exc, f"{kind} record")
        for name in self._id_lists[kind]:
            if name in record and not _all_strings(record[name]):
                return f"{name} must contain only strings (rule: items)"
        invariant = INVARIANTS.get(kind)
        return invariant(record) if invariant is not None else None
