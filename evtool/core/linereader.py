"""aggregate's and audit's reading of whole lines: the roles of an event laid out as the pack's
whole-line expression (lineshape) says, read from the match instead of a parse."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evtool.core.instant import reads_shaped, shaped_us
from evtool.core.lineshape import Shape, Unsupported, line_pattern, places, string_pattern
from evtool.core.pack import Pack
from evtool.core.roles import ALL_REGIONS, RoleError, Roles

ROLE_GROUPS = ("event_id", "time", "region", "source")


@dataclass(frozen=True)
class LineReader:
    """The whole-line expression over decoded lines, for aggregate and audit: a full match is an
    event with no duplicate key, and `groups` are where its id, time, region and source are (a
    role the pack's events do not carry matches empty: `names` maps that empty text to what the
    role stands for, ALL_REGIONS or the pack's one source)."""

    pattern: re.Pattern[str]
    roles: Roles
    names: tuple[tuple[str, str] | None, tuple[str, str] | None]     # region's, source's
    exact_time: bool        # every time it matches is one shaped_us reads as the roles do
    uuid_ids: bool          # every id it matches is UUID-shaped (hex digits in 8-4-4-4-12)

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(self.pattern.groupindex[name] for name in ROLE_GROUPS)

    def time_of(self, text: str) -> int | None:
        """The µs of a matched time, by the pack's time rule; None for the parsing path to say
        why not."""
        if self.exact_time:
            return shaped_us(text)
        try:
            return self.roles.time_of(_json_number(text) if self.roles.time_unit else text)
        except (RoleError, ValueError):
            return None


def _maybe_derived(pack: Pack) -> bool:
    """Whether a line the expression matches could be a derived record, which the stages pass on
    instead of counting: it may hold a `kind`, or every field a foreign shape of the pack's wire
    asks for (a match holds only the envelope's properties)."""
    props = set(pack.envelope.get("properties", {}))
    if "kind" in props:
        return True
    return any({path[0] for path in (*shape.has, *(p for p, _ in shape.equals)) if path} <= props
               for shape in pack.wire.foreign)


def _json_number(text: str) -> int | float:
    """A number as orjson reads it (the expression writes no exponent)."""
    return float(text) if "." in text else int(text)


def field_reader(pack: Pack) -> LineReader | None:
    """The reader of any pack whose roles are fields of the event and which carries its own id;
    None where every line must be parsed (nested roles, content ids, no expression)."""
    roles = pack.roles
    named = roles.top_level()
    if named is None or "id" not in named or not roles.payload or _maybe_derived(pack):
        return None
    text = line_pattern(pack, Shape())
    if text is None or "(?P<time>" not in text or "(?P<event_id>" not in text:
        return None
    region = None if "region" in named else ("", ALL_REGIONS)
    source = None if "source" in named else ("", roles.only_source or "")
    missing = "".join(f"(?P<{g}>)" for g, absent in (("region", region), ("source", source)) if absent)
    try:
        compiled = re.compile(missing + text)
    except re.error:
        return None
    props = pack.envelope.get("properties", {})
    exact = roles.time_unit is None and (
        re.search(r'"\(\?P<time>\(\?P<ts_\w+>', text) is not None
        or _every(props.get(named.get("time", "")), reads_shaped))
    uuid = _every(props.get(named["id"]), _uuid_shaped)
    return LineReader(compiled, roles, (region, source), exact, uuid)


_HEX, _DASH = frozenset("0123456789abcdefABCDEF"), frozenset("-")
_UUID_PLACES = tuple(_DASH if at in (8, 13, 18, 23) else _HEX for at in range(36))


def _uuid_shaped(places: tuple[frozenset[str], ...]) -> bool:
    return len(places) == 36 and all(p <= u for p, u in zip(places, _UUID_PLACES, strict=True))


def _every(rule: Any, shaped: Callable[[tuple[frozenset[str], ...]], bool]) -> bool:
    """Whether every string a role's own `pattern` lets through is `shaped` (ids and times the
    schema spells as fixed places: evtool's UUIDs, lab3's UUIDs and 'Z' times), so the reader
    needs no second look at a match."""
    if not isinstance(rule, dict) or rule.get("type") != "string":
        return False
    try:
        found = places(string_pattern(rule, ""))
    except Unsupported:
        return False
    return found is not None and shaped(found)
