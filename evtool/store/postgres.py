"""The audit database in PostgreSQL (psycopg 3): the same tables and idempotent inserts, so several
audit processes on several machines can share one store."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from evtool.core.secrets import redact
from evtool.store.schema import ROLES_DDL, TABLE_COLUMNS
from evtool.store.sqlite import TOTALED, Conflicts, Rows, StoreError, conflicts

SCHEMA_VERSION = 2
RETRIES = 6
# The contract's readable columns, read out of `raw`. jsonb cannot hold NUL, so a \u0000 escape
# is read as U+FFFD there; `raw` keeps the exact line.
_JSON = "replace(raw, '\\u0000', '\\ufffd')::jsonb"
READABLE = {
    "timestamp": f"{_JSON} ->> 'timestamp'",
    "region": f"{_JSON} ->> 'region'",
    "source": f"{_JSON} ->> 'source'",
    "schema_version": f"{_JSON} ->> 'schema_version'",
    "correlation_id": f"{_JSON} ->> 'correlation_id'",
    "payload": f"({_JSON} -> 'payload')::text",
}
# version 1 read the columns with raw::jsonb, which refused any event holding \u0000
MIGRATE_FROM_1 = [statement for column, expression in READABLE.items() for statement in (
    f"ALTER TABLE events_in DROP COLUMN {column}",
    f"ALTER TABLE events_in ADD COLUMN {column} TEXT GENERATED ALWAYS AS ({expression}) STORED")]
DDL = [
    "CREATE TABLE IF NOT EXISTS evtool_meta (version INTEGER NOT NULL)",
    # ids compare byte-wise (COLLATE "C") so replay orders exactly as it does on SQLite
    f"""CREATE TABLE IF NOT EXISTS events_in (
        event_id TEXT COLLATE "C" PRIMARY KEY,
        {", ".join(f"{c} TEXT GENERATED ALWAYS AS ({e}) STORED" for c, e in READABLE.items())},
        raw TEXT NOT NULL, received_at TEXT NOT NULL, ts_us BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_in_time ON events_in (ts_us, event_id)",
    """CREATE TABLE IF NOT EXISTS metrics_out (
        metric_id TEXT COLLATE "C" PRIMARY KEY, date TEXT NOT NULL, region TEXT NOT NULL,
        window_start TEXT NOT NULL, window_end TEXT NOT NULL, window_seconds DOUBLE PRECISION NOT NULL,
        counts TEXT NOT NULL, total INTEGER NOT NULL, created_at TEXT NOT NULL, raw TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS trace (
        metric_id TEXT COLLATE "C" NOT NULL, event_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (metric_id, event_id))""",
    """CREATE TABLE IF NOT EXISTS windows (
        window_id TEXT PRIMARY KEY, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
        window_seconds DOUBLE PRECISION NOT NULL, total INTEGER NOT NULL, partition INTEGER,
        raw TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT PRIMARY KEY, window_start TEXT, region TEXT, source TEXT, count INTEGER,
        baseline DOUBLE PRECISION, threshold DOUBLE PRECISION, score DOUBLE PRECISION,
        raw TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deadletters (
        deadletter_id TEXT PRIMARY KEY, stage TEXT, reason TEXT, error TEXT, event_id TEXT,
        raw TEXT, record TEXT NOT NULL, created_at TEXT NOT NULL)""",
]


class PostgresStore:
    """Same interface as SqliteStore; SQL is written with `?` and run with `%s`."""

    kind = "postgresql"
    reads_trace = False
    trace_by = ("metric_id", "SELECT json_object_agg(metric_id, ids)::text FROM (SELECT metric_id, "
                             "json_agg(event_id) AS ids FROM trace WHERE metric_id IN ({marks}) "
                             "GROUP BY metric_id) t")
    submit = None               # writes in the caller's thread
    send_ahead = None
    raw_bytes = "convert_to({0}, 'UTF8')"
    from_raw = "{0}"

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'evtool[postgres]'") from None
        self._psycopg = psycopg
        self.path = _redact(url)
        try:
            self.conn = psycopg.connect(url, autocommit=True)
            self._migrate(readonly)
        except psycopg.Error as exc:
            raise StoreError(f"cannot use the audit database {self.path}: {_first_line(exc)}") from None
        self._sql = {
            table: (f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                    f"({', '.join('%s' for _ in cols)}) ON CONFLICT DO NOTHING")
            for table, cols in TABLE_COLUMNS.items()
        }

    def _migrate(self, readonly: bool) -> None:
        with self.conn.transaction():
            version = None
            if self._one("SELECT to_regclass('evtool_meta')") is not None:
                version = self._one("SELECT max(version) FROM evtool_meta")
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}, newer than this evtool "
                                 f"knows ({SCHEMA_VERSION}): upgrade evtool")
            if version == SCHEMA_VERSION:
                return
            if readonly:
                raise StoreError(f"{self.path} is not an evtool audit database "
                                 "(run `evtool audit` on it)")
            self.conn.execute("SELECT pg_advisory_xact_lock(4242)")     # two audits starting at once
            version = self._one("SELECT max(version) FROM evtool_meta") if version is not None else None
            if version == SCHEMA_VERSION:
                return
            for statement in MIGRATE_FROM_1 if version == 1 else DDL:
                self.conn.execute(statement)
            self.conn.execute("DELETE FROM evtool_meta")
            self.conn.execute("INSERT INTO evtool_meta VALUES (%s)", (SCHEMA_VERSION,))

    def _one(self, sql: str) -> Any:
        row = self.conn.execute(sql).fetchone()
        return None if row is None else row[0]

    def write(self, rows: Rows) -> Conflicts:
        """One transaction. Rows go in key order, so audits sharing the store take row locks in
        the same order; a deadlock or serialization failure that still happens is retried (the
        batch is idempotent). Returns the metrics and windows a copy with another total kept out."""
        batches = {table: sorted(tuple(_no_nul(v) for v in row) for row in batch)
                   for table, batch in rows.by_table.items() if batch}
        retryable = (self._psycopg.errors.DeadlockDetected, self._psycopg.errors.SerializationFailure)
        for attempt in range(RETRIES):
            try:
                found: Conflicts = {}
                with self.conn.transaction(), self.conn.cursor() as cur:
                    for table, batch in batches.items():
                        cur.executemany(self._sql[table], batch)
                        if table in TOTALED:
                            found.update(conflicts(table, batch, self._totals(table, batch)))
                return found
            except retryable:
                time.sleep(0.05 * 2 ** attempt)
            except self._psycopg.Error as exc:
                raise StoreError(f"cannot write {self.path}: {_first_line(exc)}") from None
        raise StoreError(f"cannot write {self.path}: still deadlocked after {RETRIES} attempts")

    def _totals(self, table: str, batch: list[tuple[Any, ...]]) -> dict[str, int]:
        column = TOTALED[table][0]
        sql = f"SELECT {column}, total FROM {table} WHERE {column} = ANY(%s)"
        return {key: int(total) for key, total in
                self.conn.execute(sql, ([row[0] for row in batch],)).fetchall()}

    def keep_roles(self, text: str) -> Any:
        """`text` recorded as the roles the events are read by, unless some are: what is recorded."""
        try:
            with self.conn.transaction():
                # audits starting at once: CREATE TABLE IF NOT EXISTS itself can collide
                self.conn.execute("SELECT pg_advisory_xact_lock(4242)")
                self.conn.execute(ROLES_DDL)
                self.conn.execute("INSERT INTO evtool_roles VALUES (1, %s) ON CONFLICT DO NOTHING",
                                  (text,))
                return self._one("SELECT roles FROM evtool_roles WHERE id = 1")
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot write {self.path}: {_first_line(exc)}") from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), tuple(params))
                while chunk := cur.fetchmany(4096):
                    yield from chunk
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot read {self.path}: {_first_line(exc)}") from None

    def close(self) -> None:
        self.conn.close()


def _no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL, which any decoded string field can. `raw`/`record`
    keeps the exact JSON (NUL escaped as \\u0000), so only the readable copies change."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def _first_line(exc: Exception) -> str:
    return _redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


_redact = redact
