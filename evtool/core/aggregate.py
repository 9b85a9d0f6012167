"""aggregate: dedupe events, count them in event-time windows, emit window and metric records."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from evtool.core.anomaly import AlertConfig, AnomalyDetector
from evtool.core.derived import DerivedChecker
from evtool.core.fields import Fields, LineFields, ParsedFields, ReadFields, event_fields
from evtool.core.instant import (
    MICROS,
    iso_us,
    micros_of,
    seconds_value,
)
from evtool.core.linereader import LineReader
from evtool.core.records import deadletter, dumps, name_ids, parse, reject_unparsable
from evtool.core.roles import RoleError, Roles
from evtool.core.stats import Stats
from evtool.core.tally import Tally
from evtool.core.windows import Window, placeable
from evtool.core.wire import Topology, Wire

STAGE = "aggregate"


@dataclass(frozen=True)
class AggregateConfig:
    window: float = 5.0
    lateness: float = 0.0
    forward: bool = False
    dedupe_horizon: float = 86400.0
    alerts: AlertConfig | None = field(default_factory=AlertConfig)
    partition: int | None = None
    max_ahead: float = 86400.0
    wire: Wire = field(default_factory=lambda: Wire({}, Topology()))
    roles: Roles = field(default_factory=Roles)


_METRIC_ID = name_ids("metric")


def window_records(window: Window, size: int, duplicates: int = 0,
                   partition: int | None = None, wire: Wire | None = None) -> list[dict[str, Any]]:
    """The `window` record of a closed window followed by one `metric` per region, by region;
    `size` in microseconds."""
    start = window.index * size
    start_iso, end_iso = iso_us(start), iso_us(start + size)
    seconds = seconds_value(size)
    id_tail, date = f"|{start_iso}|{seconds}", start_iso[:10]
    by_source: dict[str, int] = {}
    by_region: dict[str, int] = {}
    metrics: list[dict[str, Any]] = []
    all_ids: list[str] = []
    for region in sorted(window.counts):
        counts = window.counts[region]
        ids = window.ids[region]
        ids.sort()
        all_ids += ids
        by_region[region] = total = len(ids)            # one id per count
        for source, n in counts.items():
            by_source[source] = by_source.get(source, 0) + n
        metrics.append({
            "kind": "metric",
            "metric_id": _METRIC_ID(region + id_tail),
            "date": date,
            "region": region,
            "window_start": start_iso,
            "window_end": end_iso,
            "window_seconds": seconds,
            "counts": counts,
            "total": total,
            "input_event_ids": ids,
        })
    all_ids.sort()
    record = {
        "kind": "window",
        "window_start": start_iso,
        "window_end": end_iso,
        "total": len(all_ids),
        "by_source": by_source,
        "by_region": by_region,
        "by_region_source": {r: window.counts[r] for r in by_region},
        "event_ids": all_ids,
        "duplicates": duplicates,
    }
    if partition is not None:
        record["partition"] = partition
    if wire is not None and wire.records:
        record.update(wire.extra("window", record))
        for metric in metrics:
            metric.update(wire.extra("metric", metric))
    return [record, *metrics]


class AggregateStage:
    """Processes batches of lines; output order: forwarded events, then windows as they close."""

    def __init__(self, cfg: AggregateConfig, stats: Stats, derived: DerivedChecker,
                 reader: LineReader | None = None, fields: ReadFields | None = None) -> None:
        """`reader`: the pack's whole-line reader (linereader), read without parsing.
        `fields`: `LineFields` of the reader, run over a batch maybe elsewhere (read ahead)."""
        self.cfg = cfg
        self.stats = stats
        self.derived = derived
        self.fields = fields or (LineFields(reader) if reader is not None else None)
        self._parsed = ParsedFields(cfg.roles, cfg.wire)
        self.tally = Tally(micros_of(cfg.window, "--window"), round(cfg.lateness * MICROS),
                           round(cfg.dedupe_horizon * MICROS), round(cfg.max_ahead * MICROS))
        self.windows = self.tally.windows
        self._needs: deque[float] = deque()
        self.detector = AnomalyDetector(cfg.alerts) if cfg.alerts else None
        self._reported_duplicates = 0

    @property
    def newest_event_time(self) -> float | None:
        newest = self.windows.max_seen
        return newest / MICROS if math.isfinite(newest) else None

    @property
    def unsafe_batches(self) -> int:
        """Recent input batches that counted into a window not yet emitted: their input must not
        be acked, so a crash redelivers it rather than losing a count. A batch is safe once the
        newest window open after it is older than every window still open."""
        oldest_open = min(self.windows.open, default=math.inf)
        while self._needs and self._needs[0] < oldest_open:
            self._needs.popleft()
        return len(self._needs)

    def still_open(self, lines: list[bytes]) -> list[bytes]:
        """The lines that counted into a window not yet emitted. At a stop on the broker only
        these must come again: the rest are in windows already sent, or were dead letters or
        duplicates, and a restart would count them a second time."""
        fields: list[Fields | None] = self.fields(lines) if self.fields else [None] * len(lines)
        size, windows = self.windows.size, self.windows.open
        counted: dict[tuple[int, str], set[str]] = {}
        keep: list[bytes] = []
        for line, got in zip(lines, fields, strict=True):
            if got is None:             # read as counting read it, without its dead letters
                got = self._parsed([line])[0]
                if got is None:
                    continue
            event_id, region, _, at, _ = got
            window = windows.get(at // size)
            if window is None:
                continue
            ids = counted.get((window.index, region))
            if ids is None:
                ids = counted[window.index, region] = set(window.ids.get(region, ()))
            if event_id in ids:
                keep.append(line)
        return keep

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None:
        self.stats.in_ += len(lines)
        fields: list[Fields | None] = self.fields(lines) if self.fields else [None] * len(lines)

        def read(line: bytes) -> Fields | None:
            return self._read_slowly(line, out, dead)

        def closed(windows: Iterator[Window], duplicates: int) -> None:
            self.stats.duplicates += duplicates
            self._emit(windows, out)

        self.stats.events += self.tally.count(lines, fields, read, _Refused(self, dead), closed,
                                              out if self.cfg.forward else None)
        self._needs.append(max(self.windows.open, default=-math.inf))

    def _read_slowly(self, line: bytes, out: list[bytes], dead: list[bytes]) -> Fields | None:
        """A line the expression did not read: its fields, or None when it was passed on (a
        derived record) or refused (a dead letter)."""
        stats = self.stats
        try:
            event = parse(line)
        except orjson.JSONDecodeError as exc:
            rejected = reject_unparsable(STAGE, line, exc, stats)
            if rejected is not None:
                dead.append(rejected)
            return None
        if type(event) is not dict:
            stats.add_dead("schema")
            dead.append(deadletter(STAGE, "schema", "an event must be a JSON object", line))
            return None
        roles = self.cfg.roles
        derived = roles.is_derived(event)
        if derived or self.cfg.wire.as_evtool_or_none(event) is not None:
            problem = self.derived.problem(event) if derived else None
            if problem is None:
                out.append(line)
            else:
                stats.add_dead("schema")
                dead.append(deadletter(STAGE, "schema", problem, line))
            return None
        try:
            return event_fields(event, roles)
        except RoleError:
            self._refuse(event, line, dead)
            return None

    def _refuse(self, event: dict[str, Any], line: bytes, dead: list[bytes]) -> None:
        """A dead letter naming every role of the event that cannot be read."""
        roles = self.cfg.roles
        problems: list[str] = []
        for read in (roles.event_id, roles.region_of, roles.source_of, roles.time_us):
            try:
                read(event)
            except RoleError as exc:
                problems.append(str(exc))
        self.stats.add_dead("schema")
        dead.append(deadletter(STAGE, "schema", "; ".join(problems), line, roles.event_id_or_none(event)))

    def _late(self, line: bytes, event_id: str, index: int, watermark: float) -> bytes:
        if index * self.windows.size < placeable(self.windows.size)[0]:
            return self._unplaceable(line, event_id, index)
        self.stats.late += 1
        self.stats.add_dead("late")
        size = self.windows.size
        start = iso_us(index * size)
        error = f"window {start} closed: watermark {iso_us(int(watermark))} is past its end"
        return deadletter(STAGE, "late", error, line, event_id,
                          {"window_start": start, "window_seconds": seconds_value(size)})

    def _future(self, line: bytes, event_id: str, at: int, newest: float) -> bytes:
        """One bad clock must not close every window: an event too far ahead of the newest one is
        set aside, and the watermark does not move for it."""
        self.stats.add_dead("future")
        error = (f"timestamp {iso_us(at)} is more than --max-ahead {seconds_value(self.tally.ahead)} s "
                 f"past the newest event, {iso_us(int(newest))}")
        return deadletter(STAGE, "future", error, line, event_id)

    def _unplaceable(self, line: bytes, event_id: str, index: int) -> bytes:
        self.stats.add_dead("schema")
        return deadletter(STAGE, "schema", "timestamp: its window would fall outside the years "
                          "0001-9999 in UTC", line, event_id)

    def idle(self, out: list[bytes], dead: list[bytes]) -> None:
        """A live input went quiet: close what is open rather than hold it forever."""
        self._emit(self.windows.flush(), out)

    def finish(self, out: list[bytes], dead: list[bytes]) -> None:
        self._emit(self.windows.flush(), out)

    def _emit(self, closed: Iterable[Window], out: list[bytes]) -> None:
        """Each closed window's records, then its alerts; duplicates dropped since the last
        window ride on the window record, so a dashboard downstream can show them."""
        size, seconds = self.windows.size, seconds_value(self.windows.size)
        for window in closed:
            dups = self.stats.duplicates - self._reported_duplicates
            self._reported_duplicates = self.stats.duplicates
            records = window_records(window, size, dups, self.cfg.partition, self.cfg.wire)
            if self.detector is not None:
                records += self.detector.observe(window.index * size, seconds, window.counts)
            out.extend(dumps(record) for record in records)


@dataclass
class _Refused:
    """The tally's refusals as the stage's dead letters."""

    stage: AggregateStage
    dead: list[bytes]

    def late(self, line: bytes, event_id: str, index: int, watermark: float) -> None:
        self.dead.append(self.stage._late(line, event_id, index, watermark))

    def future(self, line: bytes, event_id: str, at: int, newest: float) -> None:
        self.dead.append(self.stage._future(line, event_id, at, newest))

    def unplaceable(self, line: bytes, event_id: str, index: int) -> None:
        self.dead.append(self.stage._unplaceable(line, event_id, index))
