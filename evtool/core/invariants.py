"""What a window's or a metric's own numbers must agree on, whoever made it (evtool, or a foreign
wire whose records name no events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evtool.core.instant import bound_us

Invariant = Callable[[dict[str, Any]], str | None]


def _span(rec: dict[str, Any]) -> str | None:
    try:
        start, end = bound_us(rec["window_start"]), bound_us(rec["window_end"])
    except ValueError as exc:
        return str(exc)
    return None if start < end else "window_end must be after window_start"


def _sum(values: Any) -> int:
    return sum(values.values())


def window_sums(rec: dict[str, Any]) -> str | None:
    total = rec["total"]
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


def metric_sums(rec: dict[str, Any]) -> str | None:
    if rec["date"] != rec["window_start"][:10]:
        return f"date {rec['date']!r} is not the UTC date of window_start {rec['window_start']!r}"
    total = rec["total"]
    if _sum(rec["counts"]) != total:
        return f"counts add up to {_sum(rec['counts'])}, not total {total}"
    return None if rec["window_seconds"] == 0 else _span(rec)


FOREIGN_INVARIANTS: dict[str, Invariant] = {"window": window_sums, "metric": metric_sums}
