"""Recompute metrics from stored events and say where the stored ones differ."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from evtool.core.instant import iso_us, micros_of, seconds_value
from evtool.core.records import name_id


@dataclass
class StoredMetric:
    metric_id: str
    region: str
    window_start: str
    window_seconds: float
    counts: dict[str, int]
    total: int


@dataclass
class Recomputed:
    counts: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)


def recompute(events: Iterable[tuple[str, str, str, int]], seconds: float
              ) -> Iterator[tuple[str, str, Recomputed]]:
    """(region, window_start, counts and ids) per region and window, from events
    (event_id, region, source, ts_us) in time order; one window is held at a time."""
    size_us = micros_of(seconds, "window_seconds")
    current: int | None = None
    groups: dict[str, Recomputed] = {}
    for event_id, region, source, ts_us in events:
        index = ts_us // size_us
        if index != current:
            if current is not None:
                yield from _drain(groups, current, size_us)
            current, groups = index, {}
        group = groups.get(region)
        if group is None:
            group = groups[region] = Recomputed()
        group.counts[source] = group.counts.get(source, 0) + 1
        group.ids.append(event_id)
    if current is not None:
        yield from _drain(groups, current, size_us)


def _drain(groups: dict[str, Recomputed], index: int, size_us: int
           ) -> Iterator[tuple[str, str, Recomputed]]:
    start = iso_us(index * size_us)
    for region, group in groups.items():
        yield region, start, group


def differences(stored: Iterable[StoredMetric], recomputed: dict[tuple[str, str], Recomputed],
                trace_of: Callable[[str], list[str]]) -> Iterator[str]:
    """One line per stored metric that its events do not reproduce."""
    for metric in stored:
        again = recomputed.get((metric.region, metric.window_start), Recomputed())
        expected_id = name_id("metric", metric.region, metric.window_start,
                              seconds_value(micros_of(metric.window_seconds, "window_seconds")))
        if expected_id != metric.metric_id:
            yield (f"{metric.metric_id}: id does not match its region and window "
                   f"(recomputed {expected_id})")
        total = sum(again.counts.values())
        if metric.total != total or metric.counts != again.counts:
            yield (f"{metric.metric_id} ({metric.region} {metric.window_start}): stored total "
                   f"{metric.total} {_fmt(metric.counts)}, recomputed total {total} {_fmt(again.counts)}")
        traced = set(trace_of(metric.metric_id))
        if traced != set(again.ids):
            missing = sorted(set(again.ids) - traced)[:3]
            extra = sorted(traced - set(again.ids))[:3]
            yield (f"{metric.metric_id} ({metric.region} {metric.window_start}): trace holds "
                   f"{len(traced)} events, recomputed {len(again.ids)}"
                   + (f"; not traced: {', '.join(missing)}" if missing else "")
                   + (f"; traced but not in the window: {', '.join(extra)}" if extra else ""))


def _fmt(counts: dict[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + "}"
