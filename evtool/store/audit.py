"""audit: store every record in the database, and forward each batch once it has committed."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, cast

import orjson

from evtool.core import metricline
from evtool.core.dedupe import fold_id
from evtool.core.derived import DerivedChecker
from evtool.core.instant import MICROS, bound_us, shaped_us
from evtool.core.linereader import LineReader
from evtool.core.metricline import MetricLine
from evtool.core.printable import shortened
from evtool.core.records import deadletter, name_id, parse, reject_unparsable
from evtool.core.roles import Roles
from evtool.core.stats import Stats
from evtool.core.wire import Wire
from evtool.store import Conflicts, StoreError, Writer
from evtool.store.sqlite import NUL_ESCAPE, Rows, StoredTotal

STAGE = "audit"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


VERSIONED = ("metric", "window")
# With a writer, a batch this large starts committing as soon as the writer is idle.
EAGER_ROWS = 50_000
# A writer that takes rows ahead gets a batch in parts of this many rows while audit reads on,
# where batches last no longer than AHEAD_SECONDS (--batch-seconds): the transaction, open from
# the first part, holds SQLite's write lock, which another audit writing the same file waits for
# (up to its busy timeout of 10 s).
PART_ROWS = 10_000
AHEAD_SECONDS = 2.0


def _window_id(rec: dict[str, Any]) -> str:
    return name_id("window", rec["window_start"], rec["window_end"], rec.get("partition", ""))


Identity = tuple[str, str, int]
# a metric or window sent to the store: where its line sits in the batch's forward and mirror
# lists, and its identity
Versioned = tuple[int, int, Identity, bytes]


def _identity(rec: dict[str, Any]) -> Identity:
    """(table, id, total) of a metric or window record."""
    if rec["kind"] == "metric":
        return "metrics_out", rec["metric_id"], rec["total"]
    return "windows", _window_id(rec), rec["total"]


def _event_row(roles: Roles, ev: dict[str, Any], line: bytes, now: str) -> tuple[Any, ...]:
    return (fold_id(roles.event_id(ev)), line.decode("utf-8"), now, roles.time_us(ev))


def _kept(lines: list[bytes | None], found: Conflicts) -> list[bytes]:
    """A batch's lines but the copies its commit kept out (None): only a conflict makes one."""
    return [line for line in lines if line is not None] if found else cast(list[bytes], lines)


@dataclass
class Pending:
    """A batch whose commit is under way: the lines that go out once it has committed, and the
    metrics and windows in it (the copies its commit reports as conflicts become dead letters)."""

    done: Future[Conflicts]
    forward: list[bytes | None]
    dead: list[bytes]
    mirror: list[bytes | None]
    versioned: list[Versioned]
    batches: int


class AuditStage:
    """Buffers rows and their lines; a commit (every `batch_records` records or `batch_seconds`)
    releases the lines downstream. `unsafe_batches` says how many recent input batches are not
    yet committed, so a broker source acks only what is in the database."""

    def __init__(self, store: Writer, stats: Stats, derived: DerivedChecker, *,
                 batch_records: int = 100_000,
                 batch_seconds: float = 1.0, jsonl: BinaryIO | None = None, wire: Wire | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 reader: LineReader | None = None, overlap: bool = False,
                 roles: Roles | None = None) -> None:
        """`reader`: the pack's whole-line reader (linereader): such events are not parsed.
        `overlap`: a batch commits while the next one is read, and a store with `submit` (the
        SQLite writer process) holds two, the second queued behind the first, and takes a short
        batch's rows ahead in parts as they are read (lines still go out only once committed,
        in order)."""
        self.store = store
        # how a batch commits alongside reading: None (not at all), the store's own pipeline
        # (two in flight), or a thread of audit's (one)
        self._writer: ThreadPoolExecutor | None = None
        self._submit: Callable[[Rows], Future[Conflicts]] | None = None
        self._depth = 1
        self._ahead: Callable[[Rows], None] | None = None
        if overlap and store.submit is not None:
            self._submit, self._depth = store.submit, 2
            if batch_seconds <= AHEAD_SECONDS:
                self._ahead = store.send_ahead
        elif overlap:
            writer = self._writer = ThreadPoolExecutor(1, "audit-writer")
            self._submit = lambda rows: writer.submit(store.write, rows)
        self._pending: deque[Pending] = deque()
        self.stats = stats
        self.derived = derived
        self.wire = wire if wire is not None and wire.foreign else None
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.jsonl = jsonl
        self.clock = clock
        self.reader = reader
        self.roles = roles or Roles()
        self._groups = reader.groups[:2] if reader else ()
        self.rows = Rows()
        self._sent = 0                  # rows of the batch sent ahead (not in `rows`)
        self._forward: list[bytes | None] = []
        self._totals: dict[str, int] = {}
        self._versioned: list[Versioned] = []
        self._dead: list[bytes] = []
        self._mirror: list[bytes | None] = []
        self._since = 0.0
        self.unsafe_batches = 0
        self.newest_event_time: float | None = None

    def still_open(self, lines: list[bytes]) -> list[bytes]:
        """Every line not acked is in a batch not yet committed: all must come again."""
        return lines

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None:
        while self._pending and self._pending[0].done.done():
            self._release_oldest(out, dead)
        if not (self._forward or self._dead):
            self._since = self.clock()
        self.stats.in_ += len(lines)
        now = _now()
        events = self.rows.by_table["events_in"]
        read = self.reader.pattern.fullmatch if self.reader else None
        time_of = self.reader.time_of if self.reader and not self.reader.exact_time else shaped_us
        read_metric = metricline.read
        mirror, forward = self._mirror, self._forward
        for line in lines:
            text = line.decode("utf-8", "replace")
            if read is not None:
                found = read(text)
                if found is not None:           # an event laid out as gen writes it: no parse
                    event_id, ts = found.group(*self._groups)
                    if not event_id.islower():
                        event_id = fold_id(event_id)
                    at = time_of(ts)
                    if at is not None:          # else the parsing path below says why
                        events.append((event_id, text, now, at))
                        self.stats.events += 1
                        mirror.append(line)
                        forward.append(line)
                        continue
            metric = read_metric(text)
            if metric is not None:                  # a metric laid out as aggregate writes it
                self._add_versioned(("metrics_out", metric.metric_id, metric.total), metric, line, now)
                continue
            try:
                record = parse(line)
            except orjson.JSONDecodeError as exc:
                rejected = reject_unparsable(STAGE, line, exc, self.stats)
                if rejected is not None:
                    self._add_dead_letter(rejected, now)
                continue
            try:
                if type(record) is not dict:
                    raise ValueError("a record must be a JSON object")
                derived = self.roles.is_derived(record)
                adapted = self.wire.as_evtool(record) if self.wire and not derived else None
                if adapted is not None:                     # the pack's foreign shapes, checked there
                    self._add_derived(adapted, line, now)
                    self._mirror.append(line)
                elif derived:
                    problem = self.derived.problem(record)
                    if problem is not None:
                        self._reject(problem, line, None, now)
                        continue
                    if record["kind"] in VERSIONED:
                        self._add_versioned(_identity(record), record, line, now)
                        continue
                    if self._add_derived(record, line, now):
                        self._mirror.append(line)
                else:
                    events.append(_event_row(self.roles, record, line, now))
                    self.stats.events += 1
                    self._mirror.append(line)
            except (KeyError, TypeError, ValueError) as exc:
                event_id = self.roles.event_id_or_none(record) if type(record) is dict else None
                what = f"{exc.args[0]}: missing" if isinstance(exc, KeyError) else str(exc)
                self._reject(f"cannot store: {what}", line, event_id, now)
                continue
            self._forward.append(line)
        self.unsafe_batches += 1
        size = self._sent + len(self.rows)
        eager = self._submit is not None and not self._pending and size >= EAGER_ROWS
        if eager or size >= self.batch_records or self.clock() - self._since >= self.batch_seconds:
            self._commit(out, dead, wait=self._submit is None)
        elif self._ahead is not None and len(self.rows) >= PART_ROWS:
            self._ahead(self.rows)
            self._sent += len(self.rows)
            self.rows = Rows()

    def _add_versioned(self, key: Identity, record: dict[str, Any] | MetricLine, line: bytes,
                       now: str) -> None:
        """A metric or window whose id came before with another total is a conflict (two
        aggregates on one queue, or one restarted after emitting): the first copy is kept, the
        later one becomes a dead letter naming both totals instead of vanishing. A copy in this
        batch is checked here; one in the store, by the store as it writes (see `_release_oldest`)."""
        prior = self._totals.setdefault(key[1], key[2])
        if prior != key[2]:
            self._conflict(key, prior, line, now)
            return
        if isinstance(record, MetricLine):                 # its first fields are the row's
            self._add_metric((*record[:-1], now, line.decode("utf-8")), record.event_ids)
        else:
            self._add_derived(record, line, now)
        self._versioned.append((len(self._forward), len(self._mirror), key, line))
        self._forward.append(line)
        self._mirror.append(line)

    def _conflict(self, key: Identity, prior: StoredTotal, line: bytes, now: str) -> None:
        table, ident, total = key
        self.stats.add_dead("conflict")
        said = prior if type(prior) is int else shortened(prior)
        error = (f"{'metric' if table == 'metrics_out' else 'window'} {ident}: the stored copy "
                 f"has total {said}, this one {total}; the stored one is kept")
        self._add_dead_letter(deadletter(STAGE, "conflict", error, line), now)

    def _reject(self, problem: str, line: bytes, event_id: Any, now: str) -> None:
        self.stats.add_dead("schema")
        self._add_dead_letter(deadletter(STAGE, "schema", problem, line, event_id), now)

    def _add_dead_letter(self, letter: bytes, now: str) -> None:
        """audit's own rejects are stored too, and go out with the batch that commits them."""
        self._add_derived(orjson.loads(letter), letter, now)
        self._dead.append(letter)
        self._mirror.append(letter)

    def _add_derived(self, rec: dict[str, Any], line: bytes, now: str) -> bool:
        """Rows for a derived record; False for kinds audit does not store (forwarded only)."""
        tables, text = self.rows.by_table, line.decode("utf-8")
        kind = rec["kind"]
        if kind == "metric":
            self._add_metric((
                rec["metric_id"], rec["date"], rec["region"], rec["window_start"], rec["window_end"],
                rec["window_seconds"], _json(rec["counts"]), int(rec["total"]), now, text),
                lambda: rec["input_event_ids"])
        elif kind == "window":
            start, end = rec["window_start"], rec["window_end"]
            window_id = _window_id(rec)
            seconds = (bound_us(end) - bound_us(start)) / MICROS
            tables["windows"].append((window_id, start, end, seconds, int(rec["total"]),
                                      rec.get("partition"), text, now))
        elif kind == "alert":
            tables["alerts"].append((
                rec["alert_id"], rec.get("window_start"), rec.get("region"), rec.get("source"),
                rec.get("count"), rec.get("baseline"), rec.get("threshold"), rec.get("score"),
                text, now))
        elif kind == "deadletter":
            tables["deadletters"].append((
                hashlib.sha1(line).hexdigest(), rec.get("stage"), rec.get("reason"), rec.get("error"),
                rec.get("event_id"), rec.get("raw"), text, now))
        else:
            return False
        return True

    def _add_metric(self, row: tuple[Any, ...], event_ids: Callable[[], list[str]]) -> None:
        """A metric's row (TABLE_COLUMNS order: id first, line last); its trace as rows too where
        the store cannot read it out of the line."""
        tables = self.rows.by_table
        tables["metrics_out"].append(row)
        if not self.store.reads_trace or NUL_ESCAPE in row[-1]:
            tables["trace"].extend((row[0], eid) for eid in event_ids())

    def _commit(self, out: list[bytes], dead: list[bytes], wait: bool = True) -> None:
        """Write the batch in one transaction (alongside reading when it can); its lines
        go out once it has committed, and never before the batch written ahead of it."""
        self._start_commit(out, dead)
        while wait and self._pending:
            self._release_oldest(out, dead)
            if not self._pending and (len(self.rows) or self._dead):
                self._start_commit(out, dead)           # the dead letters of conflicts found on landing

    def _start_commit(self, out: list[bytes], dead: list[bytes]) -> None:
        if len(self._pending) >= self._depth:
            self._release_oldest(out, dead)
        rows, self.rows = self.rows, Rows()
        done: Future[Conflicts] = Future()
        if not (rows or self._sent):
            done.set_result({})
        elif self._submit is not None:
            done = self._submit(rows)
        else:
            try:
                done.set_result(self.store.write(rows))
            except StoreError as exc:
                done.set_exception(exc)
        self._pending.append(Pending(done, self._forward, self._dead, self._mirror, self._versioned,
                                    self.unsafe_batches - sum(p.batches for p in self._pending)))
        self._forward, self._dead, self._mirror, self._versioned, self._totals = [], [], [], [], {}
        self._sent = 0

    def _release_oldest(self, out: list[bytes], dead: list[bytes]) -> None:
        """Wait for the oldest batch in flight to commit, then log it and let its lines go.
        Copies the store kept out become dead letters of the batch being gathered, and until
        that one commits no input batch counts as safe."""
        batch = self._pending[0]
        found = batch.done.result()
        self._pending.popleft()
        if found:
            now = _now()
            for forward_at, mirror_at, key, line in batch.versioned:
                prior = found.get(key)
                if prior is not None:
                    batch.forward[forward_at] = batch.mirror[mirror_at] = None
                    self._conflict(key, prior, line, now)
            for later in self._pending:
                later.batches = 0
        else:
            self.unsafe_batches -= batch.batches
        mirror = _kept(batch.mirror, found) if self.jsonl is not None else []
        if self.jsonl is not None and mirror:
            try:
                self.jsonl.write(b"\n".join(mirror) + b"\n")
                self.jsonl.flush()
            except OSError as exc:
                raise StoreError(f"cannot write {self.jsonl.name}: {exc.strerror}") from None
        out.extend(_kept(batch.forward, found))
        dead.extend(batch.dead)

    def idle(self, out: list[bytes], dead: list[bytes]) -> None:
        self._commit(out, dead)

    def finish(self, out: list[bytes], dead: list[bytes]) -> None:
        self._commit(out, dead)

    def close(self) -> None:
        """Let a commit in flight finish (a signal can end the stage mid-batch) before the
        connection it uses is closed."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
