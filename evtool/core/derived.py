"""Checks for the records stages derive (window, metric, alert, deadletter) before anyone trusts them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from evtool.core.checks import Check, Invalid, compile_schema, describe
from evtool.core.instant import instant_us
from evtool.core.pack import Schema

Invariant = Callable[[dict[str, Any]], str | None]


def _span(rec: dict[str, Any]) -> str | None:
    try:
        start, end = instant_us(rec["window_start"]), instant_us(rec["window_end"])
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
    total = rec["total"]
    if _sum(rec["counts"]) != total:
        return f"counts add up to {_sum(rec['counts'])}, not total {total}"
    if len(rec["input_event_ids"]) != total:
        return f"total {total} but {len(rec['input_event_ids'])} input_event_ids"
    return _span(rec)


def _alert(rec: dict[str, Any]) -> str | None:
    try:
        instant_us(rec["window_start"])
    except ValueError as exc:
        return str(exc)
    return None


INVARIANTS: dict[str, Invariant] = {"window": _window, "metric": _metric, "alert": _alert}


class DerivedChecker:
    """Says why a derived record of a known kind cannot be trusted; None for good and unknown kinds."""

    def __init__(self, schemas: Mapping[str, Schema]) -> None:
        self._checks: dict[str, Check] = {
            kind: compile_schema(schema, f"records/{kind}.json") for kind, schema in schemas.items()
        }

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._checks)

    def problem(self, record: dict[str, Any]) -> str | None:
        kind = record.get("kind")
        if type(kind) is not str:
            return None
        check = self._checks.get(kind)
        if check is None:
            return None
        try:
            check(record)
        except Invalid as exc:
            return describe(exc, f"{kind} record")
        invariant = INVARIANTS.get(kind)
        return invariant(record) if invariant is not None else None
