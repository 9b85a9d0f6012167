"""What replay reads: stored events in (time, event_id) order, and metric verification."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from evtool.core.dedupe import fold_id
from evtool.core.instant import micros_of
from evtool.core.verify import StoredMetric, Verdict, verify_by_trace, verify_size
from evtool.store import Store


@dataclass(frozen=True)
class Filters:
    since_us: int | None = None
    until_us: int | None = None
    source: str | None = None
    region: str | None = None
    metric_id: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL with placeholders only: ids like `'); DROP TABLE events_in;--` are just values."""
        clauses: list[str] = []
        params: list[Any] = []
        for sql, value in (("e.ts_us >= ?", self.since_us), ("e.ts_us < ?", self.until_us),
                           ("e.source = ?", self.source), ("e.region = ?", self.region),
                           ("t.metric_id = ?", self.metric_id)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        join = " JOIN trace t ON t.event_id = e.event_id" if self.metric_id is not None else ""
        return join + (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def count_events(store: Store, filters: Filters) -> int:
    where, params = filters.where()
    return int(next(store.query(f"SELECT count(*) FROM events_in e{where}", params))[0])


def stored_events(store: Store, filters: Filters) -> Iterator[tuple[int, str]]:
    """(ts_us, raw line) of each matching event, ordered by instant, then event_id."""
    where, params = filters.where()
    sql = f"SELECT e.ts_us, e.raw FROM events_in e{where} ORDER BY e.ts_us, e.event_id"
    yield from store.query(sql, params)


def verify(store: Store) -> Verdict:
    """Every stored metric checked against the stored events, with its own window size."""
    metrics: dict[float, list[StoredMetric]] = {}
    for row in store.query("SELECT metric_id, region, window_start, window_seconds, counts, total "
                           "FROM metrics_out ORDER BY window_start, region"):
        metric = StoredMetric(row[0], row[1], row[2], float(row[3]), orjson.loads(row[4]), int(row[5]))
        metrics.setdefault(metric.window_seconds, []).append(metric)
    late: dict[str, set[float | None]] = {}       # an event may be late for several sizes
    for (record,) in store.query("SELECT record FROM deadletters WHERE stage = 'aggregate' "
                                 "AND reason = 'late'"):
        letter = orjson.loads(record)
        if isinstance(letter.get("event_id"), str):
            size = letter.get("window_seconds")
            late.setdefault(fold_id(letter["event_id"]), set()).add(
                float(size) if isinstance(size, (int, float)) else None)
    verdict = Verdict()
    for seconds, stored in sorted(metrics.items()):
        if seconds == 0:
            verify_by_trace(stored, lambda mid: _trace(store, mid), lambda ids: _events(store, ids),
                            verdict)
            continue
        try:
            micros_of(seconds, "window_seconds")
        except ValueError:
            verdict.unchecked.append(f"{len(stored)} metrics have window_seconds {seconds:g}, "
                                     "which is no window size")
            continue
        events = store.query("SELECT event_id, region, source, ts_us FROM events_in "
                             "ORDER BY ts_us, event_id")
        verify_size(stored, events, lambda mid: _trace(store, mid), lambda ids: _events(store, ids),
                    late, verdict)
    return verdict


def _trace(store: Store, metric_id: str) -> list[str]:
    return [r[0] for r in store.query("SELECT event_id FROM trace WHERE metric_id = ?", (metric_id,))]


def _events(store: Store, ids: list[str]) -> dict[str, tuple[str, str, str, int]]:
    found: dict[str, tuple[str, str, str, int]] = {}
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in store.query(f"SELECT event_id, region, source, ts_us FROM events_in "
                               f"WHERE event_id IN ({marks})", chunk):
            found[row[0]] = (row[0], row[1], row[2], int(row[3]))
    return found


def metric_count(store: Store) -> int:
    return int(next(store.query("SELECT count(*) FROM metrics_out"))[0])


def has_metric(store: Store, metric_id: str) -> bool:
    return int(next(store.query("SELECT count(*) FROM metrics_out WHERE metric_id = ?", (metric_id,)))[0]) > 0


def time_span(store: Store) -> tuple[int, int] | None:
    """(first, last) instant of the stored events, or None when there are none."""
    first, last = next(store.query("SELECT min(ts_us), max(ts_us) FROM events_in"))
    return None if first is None else (int(first), int(last))
