"""Reading what lab3's audit service recorded, so an incident it recorded replays through either
system: its SQLite `audit.db` (events_in with payload_json, trace(event_id, metric_id)) and its
`audit_log.jsonl` ({"audit_timestamp", "event_content"} per delivery, redeliveries included)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

from evtool.core.instant import TimeError, instant_us
from evtool.store.replay import Filters
from evtool.store.sqlite import StoreError, connect_read_only

SQLITE_MAGIC = b"SQLite format 3\x00"
FIELDS = ("event_id", "timestamp", "region", "source", "schema_version", "correlation_id")


def lab3_kind(path: str) -> str | None:
    """"audit.db" or "audit_log.jsonl" when `path` is one of lab3's records; None otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError:
        return None
    if head == SQLITE_MAGIC:
        try:
            with connect_read_only(path) as conn:
                columns = {r[1] for r in conn.execute("PRAGMA table_info(events_in)")}
        except sqlite3.Error:
            return None
        return "audit.db" if "payload_json" in columns and "raw" not in columns else None
    return "audit_log.jsonl" if head.lstrip().startswith(b"{") and _logs_deliveries(path) else None


def _logs_deliveries(path: str) -> bool:
    """lab3's log holds one {..., "event_content": {...}} per delivery: is its first line one?"""
    try:
        with open(path, "rb") as f:
            first = next((line for line in f if line.strip()), b"")
        entry = orjson.loads(first)
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(entry, dict) and "event_content" in entry


class Lab3Record:
    """The events lab3 stored, as (ts_us, line) in (instant, event_id) order, filtered."""

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.kind = path, kind
        self.skipped = 0

    def events(self, filters: Filters) -> Iterator[tuple[int, bytes]]:
        rows = self._from_db(filters) if self.kind == "audit.db" else self._from_log(filters)
        placed = []
        for event in rows:
            try:
                at = instant_us(event.get("timestamp"))
            except TimeError:
                self.skipped += 1                     # said by the caller: nothing lost silently
                continue
            if (filters.since_us is not None and at < filters.since_us) or (
                    filters.until_us is not None and at >= filters.until_us):
                continue
            if (filters.source is not None and event.get("source") != filters.source) or (
                    filters.region is not None and event.get("region") != filters.region):
                continue
            placed.append((at, str(event.get("event_id")), event))
        placed.sort(key=lambda p: (p[0], p[1]))
        for at, _, event in placed:
            yield at, orjson.dumps(event)

    def _from_db(self, filters: Filters) -> Iterator[dict[str, Any]]:
        sql = ("SELECT e.event_id, e.timestamp, e.region, e.source, e.schema_version, "
               "e.correlation_id, e.payload_json FROM events_in e")
        params: list[Any] = []
        if filters.metric_id is not None:
            sql += " JOIN trace t ON t.event_id = e.event_id WHERE t.metric_id = ?"
            params.append(filters.metric_id)
        try:
            with connect_read_only(self.path) as conn:
                rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read lab3's audit database {self.path}: {exc}") from None
        for row in rows:
            try:        # lab3 binds str, but a column of SQLite holds what it was given
                values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in row[:6]]
            except UnicodeDecodeError:
                self.skipped += 1
                continue
            event: dict[str, Any] = {k: v for k, v in zip(FIELDS, values, strict=True)
                                     if v is not None or k != "correlation_id"}
            try:
                event["payload"] = orjson.loads(row[6])
            except orjson.JSONDecodeError:
                self.skipped += 1
                continue
            yield event

    def _from_log(self, filters: Filters) -> Iterator[dict[str, Any]]:
        if filters.metric_id is not None:
            raise StoreError("--metric-id needs lab3's audit.db: its audit_log.jsonl holds no trace")
        seen: set[str] = set()
        try:
            with open(self.path, "rb") as log:
                for line in log:
                    if not line.strip():
                        continue
                    try:
                        entry = orjson.loads(line)
                        event = entry["event_content"]
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        self.skipped += 1
                        continue
                    if not isinstance(event, dict) or "kind" in event or not isinstance(
                            event.get("event_id"), str):
                        self.skipped += 1
                        continue
                    if event["event_id"] in seen:     # lab3 logs every delivery; it stores one
                        continue
                    seen.add(event["event_id"])
                    yield event
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
