"""What replay reads: stored events in (time, event_id) order, and metric verification."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from evtool.core.dedupe import fold_id
from evtool.core.roles import RoleError, Roles
from evtool.core.verify import (
    StoredMetric,
    Verdict,
    Window,
    verify_by_trace,
    verify_size,
    window_size,
    windows_of,
)
from evtool.store import Store, windowed
from evtool.store.sqlite import SqliteStore


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


class Pass(Protocol):
    """Told how far verification is: events read, and how many it will read in all."""

    def __call__(self, done: int, total: int) -> None: ...


def verify(store: Store, progress: Pass | None = None, roles: Roles | None = None) -> Verdict:
    """Every stored metric checked against the stored events, with its own window size: one pass
    over the events per size. `roles`: where the pack's events keep region and source (the
    database's columns read evtool's own layout)."""
    roles = roles or Roles()
    metrics: dict[float, list[StoredMetric]] = {}
    for row in store.query(f"SELECT metric_id, region, window_start, window_seconds, counts, total, "
                           f"{store.trace_by[0]} FROM metrics_out ORDER BY window_start, region"):
        metric = StoredMetric(row[0], row[1], row[2], float(row[3]), orjson.loads(row[4]), int(row[5]),
                              row[6])
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
    passes = sum(1 for seconds in metrics if seconds != 0)
    total = count_events(store, Filters()) * passes if progress is not None else 0
    done = 0
    for seconds, stored in sorted(metrics.items()):
        if seconds == 0:
            verify_by_trace(stored, lambda ids: _traces(store, ids), lambda ids: _events(store, ids, roles),
                            verdict)
            continue
        try:
            size = window_size(stored)
        except ValueError:
            verdict.unchecked.append(f"{len(stored)} metrics have window_seconds {seconds:g}, "
                                     "which is no window size")
            continue
        verify_size(stored, _windows(store, size, roles, done, total, progress),
                    lambda ids: _traces(store, ids), lambda ids: _events(store, ids, roles), late, verdict)
        done += total // passes
    return verdict


def _windows(store: Store, size: int, roles: Roles, done: int, total: int, progress: Pass | None
             ) -> Iterator[Window]:
    """The stored events window by window: grouped by SQLite in a thread of its own where the
    database's columns hold the roles, else read row by row."""
    if isinstance(store, SqliteStore) and roles.is_default:
        return windowed.windows(store.path, size, None if progress is None else
                                lambda read: progress(done + read, total))
    events = _event_rows(store, "ORDER BY ts_us", (), roles)
    return windows_of(events if progress is None else _counted(events, done, total, progress), size)


def _counted(rows: Iterator[Any], done: int, total: int, progress: Pass) -> Iterator[Any]:
    at = 0
    for at, row in enumerate(rows, 1):
        yield row
        if at % 16384 == 0:
            progress(done + at, total)
    progress(done + at, total)


def _traces(store: Store, keys: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for at in range(0, len(keys), 500):
        chunk = keys[at:at + 500]
        marks = ", ".join("?" for _ in chunk)
        for (document,) in store.query(store.trace_by[1].replace("{marks}", marks), chunk):
            found.update(orjson.loads(document) if document else {})
    return found


def _events(store: Store, ids: list[str], roles: Roles) -> dict[str, tuple[str, str, str, int]]:
    found: dict[str, tuple[str, str, str, int]] = {}
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in _event_rows(store, f"WHERE event_id IN ({marks})", chunk, roles):
            found[row[0]] = (row[0], row[1], row[2], int(row[3]))
    return found


def _event_rows(store: Store, tail: str, params: Sequence[Any], roles: Roles
                ) -> Iterator[tuple[str, str, str, int]]:
    """(event_id, region, source, ts_us) of stored events: the database's columns for evtool's
    layout, else read out of each stored line by the pack's roles."""
    if roles.is_default:
        yield from store.query(f"SELECT event_id, region, source, ts_us FROM events_in {tail}", params)
        return
    for event_id, raw, ts_us in store.query(f"SELECT event_id, raw, ts_us FROM events_in {tail}", params):
        try:
            event = orjson.loads(raw)
            yield event_id, roles.region_of(event), roles.source_of(event), ts_us
        except (orjson.JSONDecodeError, RoleError):
            yield event_id, "", "", ts_us


def metric_count(store: Store) -> int:
    return int(next(store.query("SELECT count(*) FROM metrics_out"))[0])


def has_metric(store: Store, metric_id: str) -> bool:
    return int(next(store.query("SELECT count(*) FROM metrics_out WHERE metric_id = ?", (metric_id,)))[0]) > 0


def time_span(store: Store) -> tuple[int, int] | None:
    """(first, last) instant of the stored events, or None when there are none."""
    first, last = next(store.query("SELECT min(ts_us), max(ts_us) FROM events_in"))
    return None if first is None else (int(first), int(last))
