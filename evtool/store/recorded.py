"""The roles an audit database's events were read by: audit records its pack's the first time,
and replay reads by them, so a database of a pack with other roles replays and verifies without
--pack (read by evtool's roles, every metric was a difference and --region matched nothing)."""

from __future__ import annotations

from typing import Any

import orjson

from evtool.core.roles import DEFAULTS, Roles, roles_from
from evtool.store import Store
from evtool.store.sqlite import StoreError


def as_text(roles: Roles) -> str:
    """What reading a stored event depends on, as pack.json says it (not unknown_sources)."""
    return orjson.dumps({"fields": {name: getattr(roles, name) for name in DEFAULTS},
                         "time_zone": roles.time_zone, "time_unit": roles.time_unit,
                         "sources": [roles.only_source] if roles.only_source else []},
                        option=orjson.OPT_SORT_KEYS).decode()


def from_text(text: Any) -> Roles | None:
    """The roles a record says, or None for one this evtool cannot read (a hand's edit)."""
    try:
        meta = orjson.loads(text)
        sources = meta.get("sources")
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            return None
        return roles_from(meta, sources, "evtool_roles: ")
    except (orjson.JSONDecodeError, TypeError, AttributeError, ValueError):
        return None


def shown(roles: Roles) -> str:
    """The roles as a message says them: "id /id, time /time, source /type, region /source"."""
    return ", ".join(f"{name} {getattr(roles, name) or '(none)'}"
                     for name in ("id", "time", "source", "region"))


def record(store: Store, roles: Roles) -> None:
    """`roles` recorded in a database that holds none; StoreError if it holds others: its events
    were read by those (ids, instants), and one database is read by one set."""
    kept = store.keep_roles(as_text(roles))
    if kept == as_text(roles):
        return
    held = from_text(kept)
    said = shown(held) if held is not None else f"{kept!r}, which this evtool cannot read"
    raise StoreError(f"{store.path} holds events read by other roles ({said}); this audit's pack "
                     f"reads {shown(roles)}: audit with the pack it was audited with, or into "
                     "another database")


def recorded(store: Store) -> tuple[Roles | None, bool]:
    """(the roles the database records, whether it records any): None and True for a record
    this evtool cannot read; None and False for a database audited before roles were recorded."""
    try:
        row = next(store.query("SELECT roles FROM evtool_roles WHERE id = 1"), None)
    except StoreError:
        return None, False
    if row is None:
        return None, False
    return from_text(row[0]), True
