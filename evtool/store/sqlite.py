"""The audit database in SQLite: versioned schema, idempotent batched inserts, replay queries."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evtool.errors import EndFailed
from evtool.store.engine import sqlite3
from evtool.store.schema import MIGRATIONS, ROLES_DDL, TABLE_COLUMNS

SCHEMA_VERSION = len(MIGRATIONS)
CACHE_KIB = 64 * 1024
MMAP_BYTES = 256 << 20
CHECKPOINT_PAGES = 4096
# 16 KiB pages: a commit rewrites every page its random-UUID inserts touched, and bigger pages
# mean fewer B-tree pages to touch and fewer levels (1.3M records: 24.7 s -> 20.0 s, medians of 3).
PAGE_SIZE = 16384


class StoreError(EndFailed):
    """The database cannot be used: the stage exits 1 with this message."""


class Undecodable(StoreError):
    """A stored text that is no UTF-8 (`CAST(x'ff' AS TEXT)` by hand) stopped a query; the store
    now reads such text with U+FFFD in place of what is none, so a reading may start again."""


NO_UTF8 = "Could not decode to UTF-8"
# the driver's own decoding, but going on past what is no UTF-8; a call into C per value
_REPLACING = functools.partial(str, encoding="utf-8", errors="replace")


# a stored total: an integer as audit writes it, or whatever a hand put in the column
StoredTotal = int | float | str | bytes
# (table, id, total) of a metric or window row the store did not take, and the total it keeps
Conflicts = dict[tuple[str, str, int], StoredTotal]
# tables whose rows say a total under an id: a later copy with another total is a conflict
TOTALED = {table: (TABLE_COLUMNS[table][0], TABLE_COLUMNS[table].index("total"))
           for table in ("metrics_out", "windows")}


@dataclass
class Rows:
    """Rows of one batch, by table, in the order of TABLE_COLUMNS."""

    by_table: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in TABLE_COLUMNS}
    )

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.by_table.values())


# Where each kind of row goes since schema version 2 (schema.py): events into their storage
# under the contract's view; a trace row names its metric by its `seq`.
STORED_AS = {"events_in": "event_store"}
TRACE_ROW = "INSERT INTO trace_store (metric_seq, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
# SQLite's JSON functions end a string at an escaped NUL: such a metric's trace comes as rows.
NUL_ESCAPE = "\\u0000"
TRACE_FROM_LINES = (
    "INSERT INTO trace_store (metric_seq, event_id) SELECT m.seq, j.value FROM metrics_out m, "
    "json_each(m.raw, '$.input_event_ids') j WHERE m.seq > ? AND instr(m.raw, ?) = 0 "
    "ON CONFLICT DO NOTHING")


# the traces of some metrics (by `seq`), as one JSON document: {"seq": [event_id, ...], ...}
TRACES = ("SELECT CAST('{{' || group_concat(json_quote(CAST(metric_seq AS TEXT)) || ':' || ids, ',') "
          "|| '}}' AS BLOB) FROM (SELECT metric_seq, json_group_array(event_id) AS ids FROM trace_store "
          "WHERE {where} GROUP BY metric_seq)")


def conflicts(table: str, batch: list[tuple[Any, ...]], stored: Mapping[str, StoredTotal]) -> Conflicts:
    """The rows of `batch` whose id the store holds (`stored`: id -> total) with another total."""
    total_at = TOTALED[table][1]
    return {(table, row[0], row[total_at]): stored[row[0]] for row in batch
            if row[0] in stored and stored[row[0]] != row[total_at]}


def _inserts() -> dict[str, str]:
    return {
        table: (f"INSERT INTO {STORED_AS.get(table, table)} ({', '.join(cols)}) VALUES "
                f"({', '.join('?' for _ in cols)}) ON CONFLICT DO NOTHING")
        for table, cols in TABLE_COLUMNS.items() if table != "trace"
    }


VIEWS = {statement.split()[2]: statement.strip() for migration in MIGRATIONS for statement in migration
         if statement.lstrip().upper().startswith("CREATE VIEW")}


def connect_read_only(path: str, **options: Any) -> sqlite3.Connection:
    """`path` opened read-only; on a read-only filesystem, where SQLite cannot make its lock
    files, opened as immutable, but only when no write-ahead log holds data that would be missed.
    A path is a path: '#', '?', '%' and ':memory:' are characters of its name, not URI syntax."""
    uri = Path(path).absolute().as_uri()
    try:
        conn: sqlite3.Connection = sqlite3.connect(uri + "?mode=ro", uri=True, **options)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        wal = Path(f"{path}-wal")
        if not Path(path).is_file() or (wal.exists() and wal.stat().st_size > 0):
            raise
    conn = sqlite3.connect(uri + "?immutable=1", uri=True, **options)
    return conn


def json_text(raw: str, value: str) -> str:
    """SQL of `value`, read out of the stored line `raw`, NULL where that line is no JSON text:
    SQLite's JSON functions stop a whole query at one that is no JSON, and one of bytes is none
    (replay leaves it out); such an event has no field, as a parse of it has none."""
    return f"CASE WHEN typeof({raw}) = 'text' AND json_valid({raw}) THEN {value} END"


class SqliteStore:
    """One connection; WAL so readers (replay, watch) never block the writer."""

    kind = "sqlite"
    reads_trace = True          # trace rows are needed only for lines holding NUL_ESCAPE
    submit = None               # writes in the caller's thread
    send_ahead = None
    # by `seq` (as text: JSON's keys are), not through the trace view; one document a query
    trace_by = ("CAST(seq AS TEXT)", TRACES.format(where="metric_seq IN ({marks})"))
    trace_span = TRACES.format(where="metric_seq BETWEEN ? AND ?")
    # a stored line as its bytes, unread: a hand can store text that is no UTF-8 (CAST(x'ff' AS
    # TEXT)), which decoding would stop replay at; NULL for a value that is no text
    raw_bytes = "CASE WHEN typeof({0}) = 'text' THEN CAST({0} AS BLOB) END"
    from_raw = json_text("e.raw", "{0}")

    def __init__(self, path: str, *, synchronous: str = "FULL", readonly: bool = False) -> None:
        self.path = path
        if not path:
            raise StoreError("the audit database needs a file path")
        try:
            self.conn = connect_read_only(path, isolation_level=None, check_same_thread=False) \
                if readonly else sqlite3.connect(Path(path).absolute().as_uri(), uri=True,
                                                 isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            # Four B-trees keyed by random UUIDs: the default 2 MB cache re-read pages constantly.
            self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self.conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            if not readonly:
                self.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only a new file takes it
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute(f"PRAGMA synchronous = {synchronous}")
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            self._migrate(readonly)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the audit database {path}: {exc}") from None
        self._sql = _inserts()

    def _check_views(self) -> None:
        """`events_in` and `trace` are evtool's views as written, not anything else by that name
        (a recursive view would make replay read for ever)."""
        found = dict(self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'"))
        for name, sql in VIEWS.items():
            if found.get(name) != sql:
                raise StoreError(f"{self.path}: its {name} is not the view evtool writes (edited by "
                                 "hand?); it is not read as an audit database")

    def _migrate(self, readonly: bool) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}, newer than this evtool "
                             f"knows ({SCHEMA_VERSION}): upgrade evtool")
        if version == 0:
            tables = self.conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables:
                raise StoreError(f"{self.path} is an SQLite database but not an evtool audit database")
        if version == SCHEMA_VERSION:
            self._check_views()
            return
        if readonly:
            raise StoreError(f"{self.path} needs migrating to schema version {SCHEMA_VERSION}: "
                             "run `evtool audit` on it once")
        for number in range(version, SCHEMA_VERSION):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number]:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                self.conn.execute("ROLLBACK")
                raise

    def write(self, rows: Rows) -> Conflicts:
        """One transaction for the whole batch; returns once it has committed, with the metrics
        and windows it kept out because a copy with another total was there first."""
        found = self.write_part(rows)
        self.commit()
        return found

    def write_part(self, rows: Rows) -> Conflicts:
        """Rows into the transaction under way (begun here if none is), not yet committed; on
        an error the transaction is rolled back whole."""
        by_table = rows.by_table
        found: Conflicts = {}
        try:
            if not self.conn.in_transaction:
                self.conn.execute("BEGIN IMMEDIATE")
            for table, batch in by_table.items():
                if batch and table not in ("metrics_out", "trace"):
                    found.update(self._insert(table, batch))
            if by_table["metrics_out"]:
                found.update(self._metrics(by_table["metrics_out"], by_table["trace"]))
        except sqlite3.Error as exc:
            raise self._rolled_back(exc) from None
        return found

    def commit(self) -> None:
        """Commits the transaction the parts before were written in."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._rolled_back(exc) from None

    def _rolled_back(self, exc: sqlite3.Error) -> StoreError:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        return StoreError(f"cannot write {self.path}: {exc}")

    def _insert(self, table: str, batch: list[tuple[Any, ...]]) -> Conflicts:
        """Rows already there are left alone; only when some were (rarely) are totals compared."""
        before = self.conn.total_changes
        self.conn.executemany(self._sql[table], batch)
        if table not in TOTALED or self.conn.total_changes - before == len(batch):
            return {}
        return conflicts(table, batch, self._totals(table, [row[0] for row in batch]))

    def _totals(self, table: str, ids: list[str]) -> dict[str, StoredTotal]:
        """id -> total of the `table` rows among `ids`, asked 500 at a time, as stored: a total
        edited into text is a conflict to name, not a stop (int() of it stopped the writer)."""
        column = TOTALED[table][0]
        found: dict[str, StoredTotal] = {}
        for at in range(0, len(ids), 500):
            chunk = ids[at:at + 500]
            sql = f"SELECT {column}, total FROM {table} WHERE {column} IN ({', '.join('?' for _ in chunk)})"
            try:
                found.update(self.conn.execute(sql, chunk).fetchall())
            except sqlite3.OperationalError as exc:
                if not self._replacing(exc):
                    raise
                found.update(self.conn.execute(sql, chunk).fetchall())
        return found

    def _metrics(self, batch: list[tuple[Any, ...]], trace: list[tuple[Any, ...]]) -> Conflicts:
        """The batch's metrics, then the trace of each one not stored before (a copy already
        stored keeps its own): read out of the metric's line, or for a line SQLite cannot read
        whole, from the rows that came with it."""
        before = self.conn.execute("SELECT coalesce(max(seq), 0) FROM metrics_out").fetchone()[0]
        found = self._insert("metrics_out", batch)
        self.conn.execute(TRACE_FROM_LINES, (before, NUL_ESCAPE))
        if trace:
            seqs = dict(self.conn.execute("SELECT metric_id, seq FROM metrics_out WHERE seq > ? "
                                          "AND instr(raw, ?) > 0", (before, NUL_ESCAPE)))
            self.conn.executemany(TRACE_ROW, [(seqs[metric_id], event_id)
                                              for metric_id, event_id in trace if metric_id in seqs])
        return found

    def keep_roles(self, text: str) -> Any:
        """`text` recorded as the roles the events are read by, unless some are: what is recorded."""
        try:
            self.conn.execute(ROLES_DDL)
            self.conn.execute("INSERT INTO evtool_roles VALUES (1, ?) ON CONFLICT DO NOTHING", (text,))
            return self.conn.execute("SELECT roles FROM evtool_roles WHERE id = 1").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            cursor = self.conn.execute(sql, params)
            while chunk := cursor.fetchmany(4096):
                yield from chunk
        except sqlite3.Error as exc:
            if self._replacing(exc):
                raise Undecodable(f"cannot read {self.path}: {exc}") from None
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def _replacing(self, exc: sqlite3.Error) -> bool:
        """Did text that is no UTF-8 stop a reading that can now start again, reading it with
        U+FFFD? A call per value read cost verification 6% of its instructions: only once a
        value needs it."""
        if not str(exc).startswith(NO_UTF8) or self.conn.text_factory is _REPLACING:
            return False
        self.conn.text_factory = _REPLACING
        return True

    def close(self) -> None:
        self.conn.close()
