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

from evtool.core.instant import iso_us, seconds_value
from evtool.core.records import name_ids

Event = tuple[str, str, str, int]          # event_id, region, source, ts_us
Stored = tuple[str, str, str]              # event_id, region, source: a traced event looked up
Traced = dict[str, list[str]]              # a metric's key -> its traced event ids
# asked for some metrics' traces now, answers when called: a store may read them meanwhile
Traces = Callable[[list[str]], Callable[[], Traced]]
TRACE_BATCH = 500


@dataclass(slots=True)
class StoredMetric:
    metric_id: str
    region: str
    window_start: str
    window_seconds: float
    counts: dict[str, int]
    total: int
    key: str                      # the store's name for it in its trace


@dataclass
class Verdict:
    """What verification found: differences (exit 1) and metrics it could not check (and why)."""

    differences: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    checked: int = 0


Window = tuple[str, dict[str, dict[str, str]]]          # start, region -> event_id -> source
Held = tuple[str, dict[str, dict[str, str]], dict[str, StoredMetric]]   # a window, its metrics


def verify_size(metrics: list[StoredMetric], size: int, windows: Iterable[Window],
                traces: Traces, stored_at: Callable[[list[str]], dict[str, Stored]],
                late: Mapping[str, set[float | None]], verdict: Verdict) -> None:
    """Check the metrics of one window size (`size` µs) against the stored events, window by
    window in time order (`windows_of`)."""
    if not metrics:
        return
    check = _SizeCheck(metrics, size, stored_at, late, verdict)
    at: dict[str, dict[str, StoredMetric]] = {}        # window start -> region -> its metric
    for metric in metrics:
        at.setdefault(metric.window_start, {})[metric.region] = metric

    def ask(batch: list[Held]) -> tuple[list[Held], Callable[[], Traced]]:
        """One trace query for all the metrics of a batch of windows."""
        return batch, traces([metric.key for _, _, here in batch for metric in here.values()])

    def run(batch: list[Held], answer: Callable[[], Traced]) -> None:
        traced = answer()
        for start, window, here in batch:
            for region in sorted(here.keys() | window.keys()):
                metric = here.get(region)
                check.one(metric, traced.get(metric.key, []) if metric else [], region, start,
                          window.get(region, {}))

    held = ((start, window, at.pop(start)) for start, window in windows if start in at)
    ahead: tuple[list[Held], Callable[[], Traced]] | None = None
    for batch in _batches(held):                  # the next batch's traces asked for first
        asked = ask(batch)
        if ahead is not None:
            run(*ahead)
        ahead = asked
    if ahead is not None:
        run(*ahead)
    for batch in _batches((start, {}, at[start]) for start in sorted(at)):
        run(*ask(batch))        # metrics whose window holds no stored event


def _batches(windows: Iterable[Held]) -> Iterator[list[Held]]:
    """Windows in runs of about TRACE_BATCH metrics: a trace query per window cost a fifth of
    verification's time; a run holds only its own windows' events."""
    batch: list[Held] = []
    wanted = 0
    for held in windows:
        batch.append(held)
        wanted += len(held[2])
        if wanted >= TRACE_BATCH:
            yield batch
            batch, wanted = [], 0
    if batch:
        yield batch


def windows_of(events: Iterable[Event], size: int) -> Iterator[Window]:
    """Events in time order as (window_start, region -> event_id -> source), one window held
    at a time."""
    current: int | None = None
    window: dict[str, dict[str, str]] = {}
    for event_id, region, source, ts_us in events:
        if type(region) is not str:       # a forged number or object: read as roles read it
            region = ""
        if type(source) is not str:
            source = ""
        index = ts_us // size
        if index != current:
            if current is not None:
                yield iso_us(current * size), window
            current, window = index, {}
        window.setdefault(region, {})[event_id] = source
    if current is not None:
        yield iso_us(current * size), window


class _SizeCheck:
    """The metrics of one window size, each checked against its trace and its window's events."""

    def __init__(self, metrics: list[StoredMetric], size: int,
                 stored_at: Callable[[list[str]], dict[str, Stored]],
                 late: Mapping[str, set[float | None]], verdict: Verdict) -> None:
        self.seconds = metrics[0].window_seconds
        self.stored_at, self.late, self.verdict = stored_at, late, verdict
        self.id_of = name_ids("metric")
        self.suffix = f"|{seconds_value(size)}"

    def one(self, metric: StoredMetric | None, trace: list[str], region: str, start: str,
            stored: dict[str, str]) -> None:
        """`stored`: the events of the metric's region and window (event_id -> source)."""
        verdict = self.verdict
        if metric is not None and len(trace) == len(stored) and stored.keys() == set(trace):
            verdict.checked += 1                  # the trace is the window's events, exactly
            self._check_id(metric, region, start)
            if wrong := _recount(metric, stored.values()):
                verdict.differences.append(f"{metric.metric_id} ({region} {start}): {wrong}")
            return
        traced = set(trace)
        untraced = [e for e in stored if e not in traced
                    and not (e in self.late and _was_late(self.late[e], self.seconds))]
        if metric is None:
            if untraced:
                verdict.unchecked.append(
                    f"{region or '(no region)'} {start} ({self.seconds:g} s): {len(untraced)} stored "
                    "events are in no metric and no late dead letter (were aggregate's dead letters "
                    "audited?)")
            return
        verdict.checked += 1
        name = f"{metric.metric_id} ({region} {start})"
        self._check_id(metric, region, start)
        elsewhere = self.stored_at(sorted(traced - stored.keys()))
        outside = sorted(elsewhere)
        if outside:
            verdict.differences.append(f"{name}: traced events outside its region or window: "
                                       f"{', '.join(outside[:3])}")
        missing = traced - stored.keys() - set(elsewhere)
        if missing:
            verdict.unchecked.append(f"{name}: {len(missing)} traced events are not in events_in "
                                     f"(audit did not receive them), e.g. {min(missing)}")
            return
        if wrong := _recount(metric, [stored[event_id] for event_id in traced & stored.keys()]):
            verdict.differences.append(f"{name}: {wrong}")
        if untraced:
            verdict.unchecked.append(f"{name}: {len(untraced)} stored events of its window are in no "
                                     f"metric and no late dead letter, e.g. {min(untraced)}")

    def _check_id(self, metric: StoredMetric, region: str, start: str) -> None:
        expected = self.id_of(f"{region}|{start}{self.suffix}")
        if expected != metric.metric_id:
            self.verdict.differences.append(f"{metric.metric_id}: id does not match its region and "
                                            f"window (recomputed {expected})")


def verify_by_trace(metrics: list[StoredMetric], traces: Traces,
                    stored_at: Callable[[list[str]], dict[str, Stored]], verdict: Verdict) -> None:
    """Metrics that name no window (lab3's: a day and a region) checked against their trace
    alone: the traced events stored, in the metric's region, and counted as the metric says."""
    for metric in metrics:
        traced = sorted(set(traces([metric.key])().get(metric.key, [])))
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
        if wrong := _recount(metric, [found[event_id][2] for event_id in traced]):
            verdict.differences.append(f"{name}: {wrong}")


def _recount(metric: StoredMetric, sources: Iterable[str]) -> str:
    """How the metric's counts differ from those of its traced events (`sources`, one per
    event), or "" where they do not."""
    counts: dict[str, int] = {}
    for source in sources:                        # (a few sources: a loop beats Counter's setup)
        counts[source] = counts.get(source, 0) + 1
    total = sum(counts.values())
    if metric.total == total and metric.counts == counts:
        return ""
    return (f"stored total {metric.total} {_fmt(metric.counts)}, "
            f"recomputed from its trace {total} {_fmt(counts)}")


def _was_late(sizes: set[float | None], seconds: float) -> bool:
    """A late dead letter explains an event for its own window size (or any, if it names none)."""
    return None in sizes or seconds in sizes


def _fmt(counts: dict[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + "}"
