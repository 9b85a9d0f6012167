"""audit: store every record in the database, and forward each batch once it has committed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, BinaryIO

import orjson

from evtool.core.derived import DerivedChecker
from evtool.core.instant import MICROS, instant_us
from evtool.core.records import deadletter, name_id, parse, reject_unparsable
from evtool.core.stats import Stats
from evtool.store import Store
from evtool.store.sqlite import Rows

STAGE = "audit"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _event_row(ev: dict[str, Any], line: bytes, now: str) -> tuple[Any, ...]:
    event_id = ev["event_id"]
    if type(event_id) is not str:
        raise TypeError("event_id is missing or not a string")
    return (event_id, line.decode("utf-8"), now, instant_us(ev["timestamp"]))


class AuditStage:
    """Buffers rows and their lines; a commit (every `batch_records` records or `batch_seconds`)
    releases the lines downstream. `unsafe_batches` says how many recent input batches are not
    yet committed, so a broker source acks only what is in the database."""

    def __init__(self, store: Store, stats: Stats, derived: DerivedChecker, *,
                 batch_records: int = 100_000,
                 batch_seconds: float = 1.0, jsonl: BinaryIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.stats = stats
        self.derived = derived
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.jsonl = jsonl
        self.clock = clock
        self.rows = Rows()
        self._held: list[bytes] = []
        self._held_dead: list[bytes] = []
        self._stored: list[bytes] = []
        self._since = 0.0
        self.unsafe_batches = 0

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None:
        if not (self._held or self._held_dead):
            self._since = self.clock()
        self.stats.in_ += len(lines)
        now = _now()
        events = self.rows.by_table["events_in"]
        for line in lines:
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
                if "kind" in record:
                    problem = self.derived.problem(record)
                    if problem is not None:
                        self._reject(problem, line, None, now)
                        continue
                    if self._add_derived(record, line, now):
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
        self.unsafe_batches += 1
        if len(self.rows) >= self.batch_records or self.clock() - self._since >= self.batch_seconds:
            self._commit(out, dead)

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
            trace = [(metric_id, eid) for eid in rec["input_event_ids"]]
            tables["metrics_out"].append(row)
            tables["trace"].extend(trace)
        elif kind == "window":
            start, end = rec["window_start"], rec["window_end"]
            window_id = name_id("window", start, end, rec.get("partition", ""))
            seconds = (instant_us(end) - instant_us(start)) / MICROS
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

    def _commit(self, out: list[bytes], dead: list[bytes]) -> None:
        if self.rows:
            self.store.write(self.rows)
            self.rows.clear()
        if self.jsonl is not None and self._stored:
            self.jsonl.write(b"\n".join(self._stored) + b"\n")
            self.jsonl.flush()
        self._stored.clear()
        out.extend(self._held)
        dead.extend(self._held_dead)
        self._held.clear()
        self._held_dead.clear()
        self.unsafe_batches = 0

    def idle(self, out: list[bytes], dead: list[bytes]) -> None:
        self._commit(out, dead)

    def finish(self, out: list[bytes], dead: list[bytes]) -> None:
        self._commit(out, dead)
