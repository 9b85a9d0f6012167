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
from evtool.core.roles import RoleError, Roles, content_id
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


class ParsedFields:
    """Reads parsed lines by the pack's roles, for packs no expression reads (nested roles,
    content ids): the parse, the content id and the time move to the child reading ahead too.
    None for whatever is not a plain event, which the stage reads again to say why."""

    def __init__(self, roles: Roles, wire: Wire) -> None:
        self.roles = roles
        self.wire = wire

    def __call__(self, lines: list[bytes]) -> list[Fields | None]:
        roles, foreign = self.roles, self.wire.as_evtool_or_none
        got: list[Fields | None] = []
        for line in lines:
            try:
                event = parse(line)
            except orjson.JSONDecodeError:
                got.append(None)
                continue
            if type(event) is not dict or roles.is_derived(event) or foreign(event) is not None:
                got.append(None)
                continue
            try:
                got.append(event_fields(event, roles))
            except RoleError:
                got.append(None)
        return got
