"""audit: store every record in the database, and forward each batch once it has committed."""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, cast

import orjson

from evtool.core import lab3
from evtool.core.derived import DerivedChecker
from evtool.core.instant import MICROS, TimeError, bound_us, instant_us
from evtool.core.records import deadletter, name_id, parse, reject_unparsable
from evtool.core.stats import Stats
from evtool.store import Store, StoreError, Writer
from evtool.store.sqlite import NUL_ESCAPE, Rows

STAGE = "audit"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


VERSIONED = ("metric", "window")
# With a writer, a batch this large starts committing as soon as the writer is idle.
EAGER_ROWS = 50_000


def _window_id(rec: dict[str, Any]) -> str:
    return name_id("window", rec["window_start"], rec["window_end"], rec.get("partition", ""))


def _identity(rec: dict[str, Any]) -> tuple[str, str, int]:
    """(table, id, total) of a metric or window record."""
    if rec["kind"] == "metric":
        return "metrics_out", rec["metric_id"], rec["total"]
    return "windows", _window_id(rec), rec["total"]


def _stored_totals(store: Store, table: str, ids: list[str]) -> dict[str, int]:
    column = "metric_id" if table == "metrics_out" else "window_id"
    found: dict[str, int] = {}
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        sql = f"SELECT {column}, total FROM {table} WHERE {column} IN ({', '.join('?' for _ in chunk)})"
        found.update((key, int(total)) for key, total in store.query(sql, chunk))
    return found


def _event_row(ev: dict[str, Any], line: bytes, now: str) -> tuple[Any, ...]:
    event_id = ev["event_id"]
    if type(event_id) is not str:
        raise TypeError("event_id is missing or not a string")
    return (event_id, line.decode("utf-8"), now, instant_us(ev["timestamp"]))


@dataclass
class Flight:
    """A batch being committed: what goes out, and what it settled, once it has."""

    done: Future[None]
    held: list[bytes | None]
    held_dead: list[bytes]
    stored: list[bytes | None]
    totals: dict[str, int]
    batches: int


class AuditStage:
    """Buffers rows and their lines; a commit (every `batch_records` records or `batch_seconds`)
    releases the lines downstream. `unsafe_batches` says how many recent input batches are not
    yet committed, so a broker source acks only what is in the database."""

    def __init__(self, store: Writer, stats: Stats, derived: DerivedChecker, *,
                 batch_records: int = 100_000,
                 batch_seconds: float = 1.0, jsonl: BinaryIO | None = None, wire: str = "evtool",
                 clock: Callable[[], float] = time.monotonic,
                 reader: re.Pattern[str] | None = None,
                 lookup: Store | None = None) -> None:
        """`reader`: the pack's whole-line expression (lineshape): such events are not parsed.
        `lookup`: a second connection to the same database; with it a batch commits while the
        next one is read, and a store with `submit` (the SQLite writer process) holds two, the
        second queued behind the first (lines still go out only once committed, in order).
        Without it `store` is a Store and answers the lookups too."""
        self.store = store
        self.lookup = lookup if lookup is not None else cast(Store, store)
        # how a batch commits alongside reading: None (not at all), the store's own pipeline
        # (two in flight), or a thread of audit's (one)
        self._writer: ThreadPoolExecutor | None = None
        self._submit: Callable[[Rows], Future[None]] | None = None
        self._depth = 1
        if lookup is not None and hasattr(store, "submit"):
            self._submit, self._depth = store.submit, 2
        elif lookup is not None:
            writer = self._writer = ThreadPoolExecutor(1, "audit-writer")
            self._submit = lambda rows: writer.submit(store.write, rows)
        self._flights: deque[Flight] = deque()
        self.stats = stats
        self.derived = derived
        self.lab3 = wire == "lab3"
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.jsonl = jsonl
        self.clock = clock
        self.reader = reader
        self.rows = Rows()
        self._held: list[bytes | None] = []
        self._totals: dict[str, int] = {}
        self._held_dead: list[bytes] = []
        self._stored: list[bytes | None] = []
        self._since = 0.0
        self.unsafe_batches = 0

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None:
        while self._flights and self._flights[0].done.done():
            self._land(out, dead)
        if not (self._held or self._held_dead):
            self._since = self.clock()
        self.stats.in_ += len(lines)
        now = _now()
        events = self.rows.by_table["events_in"]
        versioned: list[tuple[int, int, dict[str, Any], bytes]] = []
        read = self.reader.fullmatch if self.reader else None
        stored, held = self._stored, self._held
        for line in lines:
            if read is not None:
                text = line.decode("utf-8", "replace")
                found = read(text)
                if found is not None:           # an event laid out as gen writes it: no parse
                    try:
                        events.append((found.group("event_id"), text, now,
                                       instant_us(found.group("ts_timestamp"))))
                    except TimeError:
                        pass                    # the parsing path below says why
                    else:
                        self.stats.events += 1
                        stored.append(line)
                        held.append(line)
                        continue
            try:
                record = parse(line)
            except orjson.JSONDecodeError as exc:
                rejected = reject_unparsable(STAGE, line, exc, self.stats)
                if rejected is not None:
                    self._hold_dead(rejected, now)
                continue
            try:
                if type(record) is not dict:
                    raise ValueError("a record must be a JSON object")
                adapted = lab3.as_evtool(record) if self.lab3 and "kind" not in record else None
                if adapted is not None:                     # lab3's own shapes, checked there
                    self._add_derived(adapted, line, now)
                    self._stored.append(line)
                elif "kind" in record:
                    problem = self.derived.problem(record)
                    if problem is not None:
                        self._reject(problem, line, None, now)
                        continue
                    if record["kind"] in VERSIONED:           # settled after the loop, in place
                        versioned.append((len(self._held), len(self._stored), record, line))
                        self._stored.append(None)
                    elif self._add_derived(record, line, now):
                        self._stored.append(line)
                else:
                    events.append(_event_row(record, line, now))
                    self.stats.events += 1
                    self._stored.append(line)
            except (KeyError, TypeError, ValueError) as exc:
                event_id = record.get("event_id") if type(record) is dict else None
                what = f"{exc.args[0]}: missing" if isinstance(exc, KeyError) else str(exc)
                self._reject(f"cannot store: {what}", line, event_id, now)
                continue
            self._held.append(line)
        if versioned:
            self._settle(versioned, now)
        self.unsafe_batches += 1
        eager = self._submit is not None and not self._flights and len(self.rows) >= EAGER_ROWS
        if eager or len(self.rows) >= self.batch_records or self.clock() - self._since >= self.batch_seconds:
            self._commit(out, dead, wait=self._submit is None)

    def _settle(self, versioned: list[tuple[int, int, dict[str, Any], bytes]], now: str) -> None:
        """Metrics and windows whose id is stored (or pending) with another total are conflicts
        (two aggregates on one queue, or one restarted after emitting): the first copy is kept,
        the later one becomes a dead letter naming both totals instead of vanishing."""
        keys = [_identity(record) for _, _, record, _ in versioned]
        for flight in self._flights:                # batches committing now, oldest first
            pending = flight.totals
            for key in (k[1] for k in keys if k[1] in pending and k[1] not in self._totals):
                self._totals[key] = pending[key]
        for table in ("metrics_out", "windows"):
            wanted = [k[1] for k in keys if k[0] == table and k[1] not in self._totals]
            self._totals.update(_stored_totals(self.lookup, table, wanted))
        for (held_at, stored_at, record, line), (_table, key, total) in zip(versioned, keys, strict=True):
            prior = self._totals.get(key)
            if prior is not None and prior != total:
                self._held[held_at] = None
                self.stats.add_dead("conflict")
                error = (f"{record['kind']} {key}: the stored copy has total {prior}, this one "
                         f"{total}; the stored one is kept")
                self._hold_dead(deadletter(STAGE, "conflict", error, line), now)
                continue
            self._totals[key] = total
            self._add_derived(record, line, now)
            self._stored[stored_at] = line

    def _reject(self, problem: str, line: bytes, event_id: Any, now: str) -> None:
        self.stats.add_dead("schema")
        self._hold_dead(deadletter(STAGE, "schema", problem, line, event_id), now)

    def _hold_dead(self, letter: bytes, now: str) -> None:
        """audit's own rejects are stored too, and go out with the batch that commits them."""
        self._add_derived(orjson.loads(letter), letter, now)
        self._held_dead.append(letter)
        self._stored.append(letter)

    def _add_derived(self, rec: dict[str, Any], line: bytes, now: str) -> bool:
        """Rows for a derived record; False for kinds audit does not store (forwarded only)."""
        tables, text = self.rows.by_table, line.decode("utf-8")
        kind = rec["kind"]
        if kind == "metric":
            metric_id = rec["metric_id"]
            row = (metric_id, rec["date"], rec["region"], rec["window_start"], rec["window_end"],
                   rec["window_seconds"], _json(rec["counts"]), int(rec["total"]), now, text)
            tables["metrics_out"].append(row)
            if not self.store.reads_trace or NUL_ESCAPE in text:
                tables["trace"].extend((metric_id, eid) for eid in rec["input_event_ids"])
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

    def _commit(self, out: list[bytes], dead: list[bytes], wait: bool = True) -> None:
        """Write the batch in one transaction (alongside reading when it can); its lines
        go out once it has committed, and never before the batch written ahead of it."""
        if len(self._flights) >= self._depth:
            self._land(out, dead)
        rows, self.rows = self.rows, Rows()
        done: Future[None] = Future()
        if not rows:
            done.set_result(None)
        elif self._submit is not None:
            done = self._submit(rows)
        else:
            try:
                self.store.write(rows)
            except StoreError as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)
        self._flights.append(Flight(done, self._held, self._held_dead, self._stored, self._totals,
                                    self.unsafe_batches - sum(f.batches for f in self._flights)))
        self._held, self._held_dead, self._stored, self._totals = [], [], [], {}
        while wait and self._flights:
            self._land(out, dead)

    def _land(self, out: list[bytes], dead: list[bytes]) -> None:
        """Wait for the oldest batch in flight to commit, then log it and let its lines go."""
        flight = self._flights[0]
        flight.done.result()
        self._flights.popleft()
        stored = [line for line in flight.stored if line is not None]
        if self.jsonl is not None and stored:
            try:
                self.jsonl.write(b"\n".join(stored) + b"\n")
                self.jsonl.flush()
            except OSError as exc:
                raise StoreError(f"cannot write {self.jsonl.name}: {exc.strerror}") from None
        out.extend(line for line in flight.held if line is not None)
        dead.extend(flight.held_dead)
        self.unsafe_batches -= flight.batches

    def idle(self, out: list[bytes], dead: list[bytes]) -> None:
        self._commit(out, dead)

    def finish(self, out: list[bytes], dead: list[bytes]) -> None:
        self._commit(out, dead)

    def close(self) -> None:
        """Let a commit in flight finish (a signal can end the stage mid-batch) before the
        connection it uses is closed."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
