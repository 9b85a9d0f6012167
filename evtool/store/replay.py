"""What replay reads: stored events in (time, event_id) order, and metric verification."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from evtool.core.dedupe import fold_id
from evtool.core.instant import MICROS, micros_of
from evtool.core.printable import shortened
from evtool.core.roles import RoleError, Roles
from evtool.core.verify import (
    Stored,
    StoredMetric,
    Traced,
    Traces,
    Verdict,
    Window,
    verify_by_trace,
    verify_size,
    windows_of,
)
from evtool.core.windows import placeable
from evtool.store import Store, windowed
from evtool.store.sqlite import SqliteStore, Undecodable

# every integer a column holds: SQLite sorts text after any number, so a range keeps an instant
# edited into text out where a bare `>=` would let it in
INSTANTS = (-(1 << 63), (1 << 63) - 1)


def _integer(column: str) -> str:
    """SQL that holds where `column` is an integer (not text, even text that is no UTF-8)."""
    return f"{column} BETWEEN {INSTANTS[0]} AND {INSTANTS[1]}"


def _read_out(store: Store, *columns: str) -> list[str]:
    """SQL of events_in's `columns` read out of its line, NULL where the store cannot read it."""
    return [store.from_raw.format(f"e.{column}") for column in columns]


@dataclass(frozen=True)
class Filters:
    since_us: int | None = None
    until_us: int | None = None
    source: str | None = None
    region: str | None = None
    metric_id: str | None = None
    # where the pack's events keep region and source; None: evtool's (the columns read them)
    roles: Roles | None = None

    @property
    def by_line(self) -> bool:
        """Whether --region/--source are judged on each stored line, by the pack's roles: the
        columns read `/region` and `/source`, which a pack with other roles keeps elsewhere (or
        not at all), so such a filter once matched no event."""
        return (self.source is not None or self.region is not None) and \
            self.roles is not None and not self.roles.is_default

    def keeps(self, raw: bytes) -> bool:
        """Whether a stored line's region and source are the ones asked (`by_line`)."""
        assert self.roles is not None
        event = _event_of(raw)
        return (self.region is None or _or_blank(self.roles.region_of, event) == self.region) and \
            (self.source is None or _or_blank(self.roles.source_of, event) == self.source)

    def where(self, store: Store) -> tuple[str, list[Any]]:
        """SQL with placeholders only: ids like `'); DROP TABLE events_in;--` are just values."""
        clauses: list[str] = []
        params: list[Any] = []
        source, region = _read_out(store, "source", "region")
        by_line = self.by_line
        for sql, value in ((f"e.ts_us BETWEEN ? AND {INSTANTS[1]}", self.since_us),
                           ("e.ts_us < ?", self.until_us),
                           (f"{source} = ?", None if by_line else self.source),
                           (f"{region} = ?", None if by_line else self.region),
                           ("t.metric_id = ?", self.metric_id)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        join = " JOIN trace t ON t.event_id = e.event_id" if self.metric_id is not None else ""
        return join + (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def count_events(store: Store, filters: Filters) -> int:
    where, params = filters.where(store)
    if filters.by_line:
        rows = store.query(f"SELECT {store.raw_bytes.format('e.raw')} FROM events_in e{where}", params)
        return sum(1 for (raw,) in rows if raw is not None and filters.keeps(raw))
    return int(next(store.query(f"SELECT count(*) FROM events_in e{where}", params))[0])


@dataclass
class Unreadable:
    """Stored rows edited past replaying: an instant that is no integer, a line that is no text."""

    rows: int = 0


def stored_events(store: Store, filters: Filters, unreadable: Unreadable) -> Iterator[tuple[float, bytes]]:
    """(instant in seconds, raw line) of each matching event, ordered by instant, then event_id,
    as replay sends them; the rows no audit writes (SQLite keeps any value a hand puts in a
    column) are left out and counted. A line is read as the bytes stored, never decoded. One
    loop checks and converts: a second layer of generator over a million rows cost replay a
    tenth of its time."""
    where, params = filters.where(store)
    # no text is read: an instant edited into text (even one that is no UTF-8) is NULL
    sql = (f"SELECT CASE WHEN {_integer('e.ts_us')} THEN e.ts_us END, {store.raw_bytes.format('e.raw')} "
           f"FROM events_in e{where} ORDER BY e.ts_us, e.event_id")
    keeps = filters.keeps if filters.by_line else None
    for ts_us, raw in store.query(sql, params):
        if type(ts_us) is int and raw is not None:
            if keeps is None or keeps(raw):
                yield ts_us / MICROS, raw
        else:
            unreadable.rows += 1


class Pass(Protocol):
    """Told how far verification is: events read, and how many it will read in all."""

    def __call__(self, done: int, total: int) -> None: ...


def verify(store: Store, progress: Pass | None = None, roles: Roles | None = None) -> Verdict:
    """Every stored metric checked against the stored events, with its own window size: one pass
    over the events per size. `roles`: where the pack's events keep region and source (the
    database's columns read evtool's own layout)."""
    roles = roles or Roles()
    try:
        return _verify(store, progress, roles)
    except Undecodable:             # read again, now past text that is no UTF-8
        return _verify(store, progress, roles)


def _verify(store: Store, progress: Pass | None, roles: Roles) -> Verdict:
    count = count_events(store, Filters()) if progress is not None else 0
    sizes: list[float] = []                       # the window sizes, once the metrics are read
    passes = 0                                    # the passes over the events begun
    readers: list[windowed.Windows | windowed.TraceReader] = []

    def events(size: int) -> Iterable[Window]:
        """The events of the pass for one window size, by window."""
        def told(read: int) -> None:
            if progress is not None:
                progress((passes - 1) * count + read, count * len(sizes))

        where = windowed.readable(roles)
        if isinstance(store, SqliteStore) and where is not None:
            reader = windowed.Windows(store.path, size, where, None if progress is None else told)
            readers.append(reader)
            return reader
        # as the grouped reading: an event whose instant is no integer, or lies where no window
        # can be, is in no window
        low, end = placeable(size)
        rows = (row for row in _event_rows(store, "ORDER BY ts_us", (), roles)
                if type(row[3]) is int and low <= row[3] < end)
        return windows_of(rows if progress is None else _counted(rows, told), size)

    try:
        # the first metric's size is read while the metrics load: almost always the only one
        guess = next(store.query("SELECT window_seconds FROM metrics_out WHERE window_seconds <> 0 "
                                 "LIMIT 1"), None)
        early_size = _micros(guess[0]) if guess is not None else None
        early = events(early_size) if early_size is not None else None
        traces = _traces(store)
        if isinstance(traces, windowed.TraceReader):
            readers.append(traces)
        (metrics, malformed), late = _stored_metrics(store), _late(store)
        sizes.extend(sorted(metrics.keys() - {0.0}))
        verdict = Verdict(differences=malformed)
        if 0.0 in metrics:
            verify_by_trace(metrics[0.0], traces, lambda ids: _events(store, ids, roles), verdict)
        for seconds in sizes:
            size = _micros(seconds)
            if size is None:
                verdict.unchecked.append(f"{len(metrics[seconds])} metrics have window_seconds "
                                         f"{seconds:g}, which is no window size")
                continue
            passing = early if early is not None and size == early_size else events(size)
            early = None if passing is early else early
            passes += 1
            verify_size(metrics[seconds], size, passing, traces,
                        lambda ids: _events(store, ids, roles), late, verdict)
        return verdict
    finally:
        for reader in readers:
            reader.close()


def _micros(seconds: Any) -> int | None:
    """A stored window size in µs, or None for a value that is none: not a number, infinite, or
    longer than the years 1-9999 hold."""
    try:
        size = micros_of(float(seconds), "window_seconds")
    except (TypeError, ValueError, OverflowError):
        return None
    low, end = placeable(size)
    return size if low < end else None


def _stored_metrics(store: Store) -> tuple[dict[float, list[StoredMetric]], list[str]]:
    """Each window size's metrics, in the order stored (a window's are looked up by region, and
    sorting them in SQL cost a quarter of their read), and what is wrong with each stored row
    that is no metric aggregate writes: such a row was edited, a difference to report."""
    metrics: dict[float, list[StoredMetric]] = {}
    malformed: list[str] = []
    loads = orjson.loads
    for row in store.query(f"SELECT metric_id, region, window_start, window_seconds, counts, total, "
                           f"{store.trace_by[0]} FROM metrics_out"):
        metric_id, region, start, seconds, counts, total, key = row
        try:
            metric = StoredMetric(metric_id, region, start, float(seconds), loads(counts), total, key)
            readable = type(metric.counts) is dict and type(total) is int and type(metric_id) is str \
                and type(region) is str and type(start) is str
        except (TypeError, ValueError):           # orjson's JSONDecodeError among them
            readable = False
        if not readable:
            malformed.append(_malformed(row))
            continue
        metrics.setdefault(metric.window_seconds, []).append(metric)
    if 0.0 in metrics:                            # checked one by one, and said in this order
        metrics[0.0].sort(key=lambda metric: (metric.window_start, metric.region))
    return metrics, malformed


def _malformed(row: Sequence[Any]) -> str:
    """Which stored field of a metric row no metric of aggregate's could hold."""
    metric_id, region, start, seconds, counts, total = row[:6]
    said = [value if type(value) is str else shortened(value) for value in row[:3]]
    name = f"{said[0]} ({said[1]} {said[2]})"
    for column, value in (("metric_id", metric_id), ("region", region), ("window_start", start)):
        if type(value) is not str:
            return f"{name}: stored {column} {shortened(value)} is not text"
    try:
        float(seconds)
    except (TypeError, ValueError):
        return f"{name}: stored window_seconds {shortened(seconds)} is not a number"
    if type(total) is not int:
        return f"{name}: stored total {shortened(total)} is not an integer"
    return f"{name}: stored counts {shortened(counts)} are not a JSON object of counts"


def _late(store: Store) -> dict[str, set[float | None]]:
    """Event ids aggregate dead-lettered as late, with the window sizes they were late for."""
    late: dict[str, set[float | None]] = {}
    for (record,) in store.query("SELECT record FROM deadletters WHERE stage = 'aggregate' "
                                 "AND reason = 'late'"):
        try:
            letter = orjson.loads(record)
        except (TypeError, ValueError):           # an edited letter explains nothing
            continue
        if type(letter) is dict and isinstance(letter.get("event_id"), str):
            size = letter.get("window_seconds")
            late.setdefault(fold_id(letter["event_id"]), set()).add(
                float(size) if isinstance(size, (int, float)) else None)
    return late


def _counted(rows: Iterator[Any], told: Callable[[int], None]) -> Iterator[Any]:
    at = 0
    for at, row in enumerate(rows, 1):
        yield row
        if at % 16384 == 0:
            told(at)
    told(at)


def _traces(store: Store) -> Traces:
    """Traces read in a thread of their own from SQLite, else when asked."""
    if isinstance(store, SqliteStore):
        return windowed.TraceReader(store.path, store.trace_by[1], store.trace_span)

    def read(keys: list[str]) -> Callable[[], Traced]:
        found = windowed.traced(windowed.trace_documents(store.query, store.trace_by[1], keys))
        return lambda: found

    return read


def _events(store: Store, ids: list[str], roles: Roles) -> dict[str, Stored]:
    """The stored events among `ids`, whatever their instant (one edited to no integer is
    stored all the same, in no window)."""
    found: dict[str, Stored] = {}
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in _event_rows(store, f"WHERE event_id IN ({marks})", chunk, roles):
            found[row[0]] = row[:3]
    return found


def _event_rows(store: Store, tail: str, params: Sequence[Any], roles: Roles
                ) -> Iterator[tuple[str, str, str, Any]]:
    """(event_id, region, source, ts_us) of stored events: the database's columns for evtool's
    layout, else read out of each stored line by the pack's roles."""
    if roles.is_default:
        region, source = _read_out(store, "region", "source")
        yield from store.query(f"SELECT e.event_id, {region}, {source}, e.ts_us FROM events_in e {tail}",
                               params)
        return
    for event_id, raw, ts_us in store.query(f"SELECT event_id, raw, ts_us FROM events_in {tail}", params):
        # a raw of bytes (a BLOB a hand stored) is no JSON text to the grouped reading either
        event = _event_of(raw) if type(raw) is str else None
        yield event_id, _or_blank(roles.region_of, event), _or_blank(roles.source_of, event), ts_us


def _event_of(text: str | bytes) -> Any:
    """A stored line (its text, or the bytes of its text) as JSON, None where it is no JSON text:
    such a line has no field, as the grouped reading takes it (and replay leaves out one that is
    no text); a role the pack's events do not carry is its constant."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _or_blank(read: Callable[[Any], str], event: Any) -> str:
    """A role's value, or "" where the stored event has none that is a string."""
    try:
        return read(event)
    except RoleError:
        return ""


def metric_count(store: Store) -> int:
    return int(next(store.query("SELECT count(*) FROM metrics_out"))[0])


def has_metric(store: Store, metric_id: str) -> bool:
    return int(next(store.query("SELECT count(*) FROM metrics_out WHERE metric_id = ?", (metric_id,)))[0]) > 0


def time_span(store: Store) -> tuple[int, int] | None:
    """(first, last) instant of the stored events, or None when there are none."""
    first, last = next(store.query("SELECT min(ts_us), max(ts_us) FROM events_in "
                                   f"WHERE {_integer('ts_us')}"))
    return None if first is None else (int(first), int(last))
