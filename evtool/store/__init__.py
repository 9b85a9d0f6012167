"""The audit database: where audit writes and replay reads (SQLite, or PostgreSQL to share)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from evtool.store.sqlite import Rows, SqliteStore, StoreError


class Store(Protocol):
    path: str
    kind: str

    def write(self, rows: Rows) -> None: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]: ...
    def close(self) -> None: ...


def open_store(db: str, *, readonly: bool = False) -> Store:
    """SQLite for a path, PostgreSQL for a postgresql:// URL."""
    if db.startswith(("postgresql://", "postgres://")):
        from evtool.store.postgres import PostgresStore

        return PostgresStore(db, readonly=readonly)
    return SqliteStore(db, readonly=readonly)


__all__ = ["Store", "StoreError", "open_store"]
