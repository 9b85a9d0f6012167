"""The half of aggregate's per-line work that needs no state: an event's roles are read (without
parsing where the pack's expression reads the line) and its instant and dedupe key computed.
Being a pure function of the lines, it may run in another process while the stage counts the
lines before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from evtool.core.dedupe import Key, compact_id, fold_id
from evtool.core.instant import shaped_us
from evtool.core.linereader import LineReader
from evtool.core.records import parse
from evtool.core.roles import ALL_REGIONS, MISSING, RoleError, Roles, content_id
from evtool.core.wire import Wire

# event_id, region, source, instant (µs), dedupe key; None: a line the stage must read itself
Fields = tuple[str, str, str, int, Key]
# how aggregate has `LineFields` run: here, or by the child reading ahead
ReadFields = Callable[[list[bytes]], list[Fields | None]]


class LineFields:
    """Reads lines with the pack's whole-line expression (linereader.field_reader)."""

    def __init__(self, reader: LineReader) -> None:
        self.reader = reader
        self.uuid_ids = reader.uuid_ids
        self.groups = reader.groups

    def __call__(self, lines: list[bytes]) -> list[Fields | None]:
        read, groups, uuid_ids = self.reader.pattern.fullmatch, self.groups, self.uuid_ids
        time_of = shaped_us if self.reader.exact_time else self.reader.time_of
        # one object per region and source: cheaper to key and to send; a role the events do
        # not carry matches empty and stands for its constant
        regions, sources = (dict([pair]) if pair else {} for pair in self.reader.names)
        got: list[Fields | None] = []
        for line in lines:
            found = read(line.decode("utf-8", "replace"))
            if found is None:
                got.append(None)
                continue
            event_id, ts, region, source = found.group(*groups)
            at = time_of(ts)
            if at is None:                  # the time rule's slow cases: the stage reads the line
                got.append(None)
                continue
            if uuid_ids:                # compact_id and fold_id, the shape known
                low = event_id.lower()
                if low != event_id:
                    event_id = low
                key: Key = int(low.replace("-", ""), 16)
            else:
                key = compact_id(event_id)
                if type(key) is int and not event_id.islower():     # a UUID: fold_id's spelling
                    event_id = event_id.lower()
            got.append((event_id, regions.setdefault(region, region), sources.setdefault(source, source),
                        at, key))
        return got


def event_fields(event: dict[str, Any], roles: Roles) -> Fields:
    """An event's fields by the pack's roles, its id folded and keyed; RoleError."""
    if roles.id is None:            # a content id is folded already, and no UUID
        event_id = content_id(event)
        key: Key = event_id
    else:
        event_id = fold_id(roles.event_id(event))
        key = compact_id(event_id)
    return event_id, roles.region_of(event), roles.source_of(event), roles.time_us(event), key


def fields_reader(roles: Roles) -> Callable[[dict[str, Any]], Fields]:
    """event_fields for one pack's roles, compiled once: a role the events do not carry is its
    constant, a top-level time one get, a content id made in place (asking the roles for each
    role of each event cost aggregate's child on the download monitor a tenth). No text of
    the pack enters the code: its names and constants are variables of the namespace."""
    ns: dict[str, Any] = {"roles": roles, "content_id": content_id, "fold_id": fold_id,
                          "compact_id": compact_id, "MISSING": MISSING,
                          "REGION": ALL_REGIONS, "SOURCE": roles.only_source or ""}
    if roles.id is None:            # a content id is folded already, and no UUID
        body = "    event_id = content_id(event)\n    key = event_id\n"
    else:
        body = "    event_id = fold_id(roles.event_id(event))\n    key = compact_id(event_id)\n"
    region = "REGION" if roles.region is None else "roles.region_of(event)"
    source = "SOURCE" if roles.source is None else "roles.source_of(event)"
    time = "roles.time_us(event)"
    tokens = roles.tokens("time")
    if tokens is not None and len(tokens) == 1:
        ns["TIME"] = tokens[0]
        time = "roles.time_of(event.get(TIME, MISSING))"
    code = f"def read(event):\n{body}    return event_id, {region}, {source}, {time}, key\n"
    exec(compile(code, "<evtool fields>", "exec"), ns)
    read: Callable[[dict[str, Any]], Fields] = ns["read"]
    return read


class ParsedFields:
    """Reads parsed lines by the pack's roles, for packs no expression reads (nested roles,
    content ids): the parse, the content id and the time move to the child reading ahead too.
    None for whatever is not a plain event, which the stage reads again to say why."""

    def __init__(self, roles: Roles, wire: Wire) -> None:
        self.roles = roles
        self.wire = wire
        self.read = fields_reader(roles)

    def __call__(self, lines: list[bytes]) -> list[Fields | None]:
        roles, read = self.roles, self.read
        foreign = self.wire.as_evtool_or_none if self.wire.foreign else None
        got: list[Fields | None] = []
        for line in lines:
            try:
                event = parse(line)
            except orjson.JSONDecodeError:
                got.append(None)
                continue
            if type(event) is not dict or roles.is_derived(event) or (
                    foreign is not None and foreign(event) is not None):
                got.append(None)
                continue
            try:
                got.append(read(event))
            except RoleError:
                got.append(None)
        return got
