"""Reading what another pipeline's audit recorded, as its pack's wire.json says (`replay`): an
SQLite database (an events table, JSON columns, a trace table) or a JSON-lines log (the event at a
pointer in each line, one line per delivery), so an incident it recorded replays through evtool."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson

from evtool.core.instant import TimeError
from evtool.core.pack import Pack
from evtool.core.roles import RoleError, parse_pointer, resolve
from evtool.core.wire import SqliteRecord
from evtool.store.engine import sqlite3
from evtool.store.replay import Filters
from evtool.store.sqlite import StoreError, connect_read_only

SQLITE_MAGIC = b"SQLite format 3\x00"


def foreign_kind(path: str, pack: Pack) -> str | None:
    """"sqlite" or "jsonl" when `path` is an audit record of the kind `pack`'s wire reads."""
    wire = pack.wire
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError:
        return None
    if head == SQLITE_MAGIC:
        return "sqlite" if wire.sqlite is not None and _has_columns(path, wire.sqlite) else None
    if wire.jsonl_event is None or not head.lstrip().startswith(b"{"):
        return None
    return "jsonl" if _logs_deliveries(path, parse_pointer(wire.jsonl_event)) else None


def _has_columns(path: str, spec: SqliteRecord) -> bool:
    needed = {c for _, c in spec.fields} | {c for _, c in spec.json_fields}
    try:
        with connect_read_only(path) as conn:
            columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{spec.table}")')}
    except sqlite3.Error:
        return False
    return bool(columns) and needed <= columns


def _logs_deliveries(path: str, event: tuple[str, ...]) -> bool:
    """Is the log's first line an object holding an event where the wire says?"""
    try:
        with open(path, "rb") as f:
            first = next((line for line in f if line.strip()), b"")
        entry = orjson.loads(first)
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(entry, dict) and isinstance(resolve(entry, event), dict)


class ForeignRecord:
    """The events a foreign audit stored, as (ts_us, line) in (instant, id) order, filtered."""

    def __init__(self, path: str, kind: str, pack: Pack) -> None:
        self.path, self.kind, self.pack = path, kind, pack
        self.shown = f"{pack.name}'s {os.path.basename(path)}"
        self.skipped = 0

    def events(self, filters: Filters) -> Iterator[tuple[int, bytes]]:
        rows = self._from_db(filters) if self.kind == "sqlite" else self._from_log(filters)
        roles = self.pack.roles
        placed = []
        for event in rows:
            try:
                at, event_id = roles.time_us(event), roles.event_id(event)
                source, region = roles.source_of(event), roles.region_of(event)
            except (TimeError, RoleError):
                self.skipped += 1                     # said by the caller: nothing lost silently
                continue
            if (filters.since_us is not None and at < filters.since_us) or (
                    filters.until_us is not None and at >= filters.until_us):
                continue
            if (filters.source is not None and source != filters.source) or (
                    filters.region is not None and region != filters.region):
                continue
            placed.append((at, event_id, event))
        placed.sort(key=lambda p: (p[0], p[1]))
        for at, _, event in placed:
            yield at, orjson.dumps(event)

    def _from_db(self, filters: Filters) -> Iterator[dict[str, Any]]:
        spec = self.pack.wire.sqlite
        assert spec is not None
        names = [*(f for f, _ in spec.fields), *(f for f, _ in spec.json_fields)]
        columns = ", ".join(f'e."{c}"' for c in [*(c for _, c in spec.fields),
                                                  *(c for _, c in spec.json_fields)])
        sql = f'SELECT {columns} FROM "{spec.table}" e'
        params: list[Any] = []
        if filters.metric_id is not None:
            if spec.trace is None:
                raise StoreError(f"--metric-id: {self.shown} holds no trace")
            table, event, metric = spec.trace
            key = dict(spec.fields).get(event, event)
            sql += f' JOIN "{table}" t ON t."{event}" = e."{key}" WHERE t."{metric}" = ?'
            params.append(filters.metric_id)
        try:
            with connect_read_only(self.path) as conn:
                conn.text_factory = bytes       # a row of text that is no UTF-8 is skipped, below
                rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.shown}: {exc}") from None
        plain = len(spec.fields)
        for row in rows:
            try:        # a column of SQLite holds what it was given: bytes too
                values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in row[:plain]]
                parsed = [orjson.loads(v) for v in row[plain:]]
            except (UnicodeDecodeError, orjson.JSONDecodeError, TypeError):
                self.skipped += 1
                continue
            yield {name: value for name, value in zip(names, [*values, *parsed], strict=True)
                   if value is not None or name not in spec.omit_null}

    def _from_log(self, filters: Filters) -> Iterator[dict[str, Any]]:
        if filters.metric_id is not None:
            raise StoreError(f"--metric-id: {self.shown} holds no trace")
        where = parse_pointer(self.pack.wire.jsonl_event or "")
        roles = self.pack.roles
        seen: set[str] = set()
        try:
            with open(self.path, "rb") as log:
                for line in log:
                    if not line.strip():
                        continue
                    try:
                        event = resolve(orjson.loads(line), where)
                        if not isinstance(event, dict) or roles.is_derived(event):
                            raise ValueError
                        event_id = roles.event_id(event)
                    except (orjson.JSONDecodeError, ValueError):
                        self.skipped += 1
                        continue
                    if event_id in seen:        # a log of every delivery; one event each
                        continue
                    seen.add(event_id)
                    yield event
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
