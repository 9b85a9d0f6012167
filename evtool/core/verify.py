"""Recompute stored metrics from stored events, and say where they differ or cannot be checked.

A metric is checked against its own trace: the traced events must be stored, lie in its region
and window, and their counts must be the metric's. The window's other stored events must be
explained by aggregate's `late` dead letters for that window size; those that are not (where
aggregate's dead letters were never audited) make the metric one that could not be checked, not
a difference. Windows of a size no metric has are not judged: another aggregate may have had them.
A metric with no window (window_seconds 0: lab3's, a day and a region) is checked by its trace alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from evtool.core.instant import iso_us, micros_of, seconds_value
from evtool.core.records import name_id

Event = tuple[str, str, str, int]          # event_id, region, source, ts_us
Traces = Callable[[list[str]], dict[str, list[str]]]    # metric ids -> each one's traced event ids


@dataclass
class StoredMetric:
    metric_id: str
    region: str
    window_start: str
    window_seconds: float
    counts: dict[str, int]
    total: int


@dataclass
class Verdict:
    """What verification found: differences (exit 1) and metrics it could not check (and why)."""

    differences: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    checked: int = 0


@dataclass
class _Window:
    """A window's stored events: region -> event_id -> (source, ts_us)."""

    events: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)


def verify_size(metrics: list[StoredMetric], events: Iterable[Event],
                traces: Traces, stored_at: Callable[[list[str]], dict[str, Event]],
                late: Mapping[str, set[float | None]], verdict: Verdict) -> None:
    """Check the metrics of one window size against the stored events (in time order)."""
    if not metrics:
        return
    seconds = metrics[0].window_seconds
    size = micros_of(seconds, "window_seconds")
    by_key = {(m.region, m.window_start): m for m in metrics}
    regions_at: dict[str, set[str]] = {}
    for region, start in by_key:
        regions_at.setdefault(start, set()).add(region)
    for start, window in _windows(events, size):
        regions = regions_at.pop(start, None)
        if regions is not None:
            traced = traces([by_key[r, start].metric_id for r in regions])   # one query a window
            for region in sorted(regions | set(window.events)):
                metric = by_key.get((region, start))
                _check(metric, traced.get(metric.metric_id, []) if metric else [], region, start,
                       window.events.get(region, {}), size, seconds, stored_at, late, verdict)
    for start, regions in sorted(regions_at.items()):     # metrics whose window holds no stored event
        traced = traces([by_key[r, start].metric_id for r in regions])
        for region in sorted(regions):
            metric = by_key[region, start]
            _check(metric, traced.get(metric.metric_id, []), region, start, {}, size, seconds, stored_at,
                   late, verdict)


def _windows(events: Iterable[Event], size: int) -> Iterator[tuple[str, _Window]]:
    """(window_start, its events by region), one window held at a time."""
    current: int | None = None
    window = _Window()
    for event_id, region, source, ts_us in events:
        index = ts_us // size
        if index != current:
            if current is not None:
                yield iso_us(current * size), window
            current, window = index, _Window()
        window.events.setdefault(region, {})[event_id] = (source, ts_us)
    if current is not None:
        yield iso_us(current * size), window


def _check(metric: StoredMetric | None, trace: list[str], region: str, start: str,
           stored: dict[str, tuple[str, int]], size: int, seconds: float,
           stored_at: Callable[[list[str]], dict[str, Event]], late: Mapping[str, set[float | None]],
           verdict: Verdict) -> None:
    traced = set(trace)
    untraced = [e for e in stored if e not in traced and not (e in late and _was_late(late[e], seconds))]
    if metric is None:
        if untraced:
            verdict.unchecked.append(
                f"{region} {start} ({seconds:g} s): {len(untraced)} stored events are in no metric "
                f"and no late dead letter (were aggregate's dead letters audited?)")
        return
    verdict.checked += 1
    name = f"{metric.metric_id} ({region} {start})"
    expected_id = name_id("metric", region, start, seconds_value(size))
    if expected_id != metric.metric_id:
        verdict.differences.append(f"{metric.metric_id}: id does not match its region and window "
                                   f"(recomputed {expected_id})")
    elsewhere = stored_at(sorted(traced - set(stored)))
    outside = sorted(elsewhere)
    if outside:
        verdict.differences.append(f"{name}: traced events outside its region or window: "
                                   f"{', '.join(outside[:3])}")
    missing = traced - set(stored) - set(elsewhere)
    if missing:
        verdict.unchecked.append(f"{name}: {len(missing)} traced events are not in events_in "
                                 f"(audit did not receive them), e.g. {min(missing)}")
        return
    _compare(metric, name, [stored[event_id][0] for event_id in traced & set(stored)], verdict)
    if untraced:
        verdict.unchecked.append(f"{name}: {len(untraced)} stored events of its window are in no "
                                 f"metric and no late dead letter, e.g. {min(untraced)}")


def verify_by_trace(metrics: list[StoredMetric], traces: Traces,
                    stored_at: Callable[[list[str]], dict[str, Event]], verdict: Verdict) -> None:
    """Metrics that name no window (lab3's: a day and a region) checked against their trace
    alone: the traced events stored, in the metric's region, and counted as the metric says."""
    for metric in metrics:
        traced = sorted(set(traces([metric.metric_id]).get(metric.metric_id, [])))
        found = stored_at(traced)
        name = f"{metric.metric_id} ({metric.region} {metric.window_start[:10]}, no window)"
        missing = [e for e in traced if e not in found]
        if missing:
            verdict.unchecked.append(f"{name}: {len(missing)} traced events are not in events_in "
                                     f"(audit did not receive them), e.g. {missing[0]}")
            continue
        verdict.checked += 1
        outside = [e for e in traced if found[e][1] != metric.region]
        if outside:
            verdict.differences.append(f"{name}: traced events outside its region: "
                                       f"{', '.join(outside[:3])}")
        _compare(metric, name, [found[event_id][2] for event_id in traced], verdict)


def _compare(metric: StoredMetric, name: str, sources: list[str], verdict: Verdict) -> None:
    """The metric's counts against those of its traced events (`sources`, one per event)."""
    counts: dict[str, int] = {}
    for source in sources:
        counts[source] = counts.get(source, 0) + 1
    total = sum(counts.values())
    if metric.total != total or metric.counts != counts:
        verdict.differences.append(f"{name}: stored total {metric.total} {_fmt(metric.counts)}, "
                                   f"recomputed from its trace {total} {_fmt(counts)}")


def _was_late(sizes: set[float | None], seconds: float) -> bool:
    """A late dead letter explains an event for its own window size (or any, if it names none)."""
    return None in sizes or seconds in sizes


def _fmt(counts: dict[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + "}"
