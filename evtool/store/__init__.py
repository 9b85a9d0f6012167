"""The audit database: where audit writes and replay reads (SQLite, or PostgreSQL to share)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from evtool.store.sqlite import Conflicts, Rows, SqliteStore, StoreError


class Writer(Protocol):
    path: str
    kind: str
    reads_trace: bool           # derives a metric's trace rows from its line (see sqlite.py)

    @property
    def submit(self) -> Callable[[Rows], Future[Conflicts]] | None:
        """Queues a batch behind the one being written (a writer process of its own), or None."""

    @property
    def send_ahead(self) -> Callable[[Rows], None] | None:
        """Hands over rows of the batch to be submitted next, to be written while the rest is
        read (into a transaction that stays open until that batch commits), or None."""

    def write(self, rows: Rows) -> Conflicts: ...
    def close(self) -> None: ...


class Store(Writer, Protocol):
    """A writer that can also be read (replay, verify)."""

    # (what names a metric in the trace, as text, from metrics_out; and the query of one JSON
    # object, such a name -> the metric's traced event ids: `{marks}` for the names)
    trace_by: tuple[str, str]
    # the SQL of a stored line's bytes as stored, NULL for a value that is no text: `{0}` for the
    # column
    raw_bytes: str
    # the SQL of a column of events_in read out of `raw` (`{0}` for it, aliased `e`): NULL where
    # the store's reading would stop at a raw that is no JSON
    from_raw: str

    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]: ...
    def keep_roles(self, text: str) -> Any: ...


def open_store(db: str, *, readonly: bool = False) -> Store:
    """SQLite for a path, PostgreSQL for a postgresql:// URL."""
    if db.startswith(("postgresql://", "postgres://")):
        from evtool.store.postgres import PostgresStore

        return PostgresStore(db, readonly=readonly)
    return SqliteStore(db, readonly=readonly)


def open_writer(db: str) -> Store | Writer:
    """Where audit writes: for SQLite a process of its own (store/writer.py)."""
    if db.startswith(("postgresql://", "postgres://")):
        return open_store(db)
    from evtool.store.writer import SqliteWriter

    return SqliteWriter(db)


__all__ = ["Conflicts", "Store", "StoreError", "Writer", "open_store", "open_writer"]
