"""Where a pack's events keep their id, time, source, region and payload (JSON Pointers, RFC 6901),
and how to read each: every stage asks the pack's roles, never a field name of its own."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from evtool.core.instant import MAX_US, MIN_US, TimeError, instant_us, shaped_us

DEFAULTS = {"id": "/event_id", "time": "/timestamp", "source": "/source", "region": "/region",
            "payload": "/payload"}
NULLABLE = ("id", "source", "region")
UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}
ALL_REGIONS = "all"
DERIVED_KINDS = frozenset({"window", "metric", "alert", "deadletter"})
_ZONE = re.compile(r"^(UTC|Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$")
_INDEX = re.compile(r"^(0|[1-9]\d*)$")
# a date-time without an offset, shaped as RFC 3339's: the pack's zone appended makes it one
_NAIVE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?").fullmatch
MISSING = object()


class RoleError(ValueError):
    """An event whose role cannot be read; the message names the field."""


def parse_pointer(text: str) -> tuple[str, ...]:
    """The reference tokens of a JSON Pointer ('' is the whole document); ValueError if not one."""
    if text == "":
        return ()
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not a JSON Pointer (it must be '' or start with '/')")
    tokens = text[1:].split("/")
    for token in tokens:
        if re.search(r"~[^01]|~$", token):
            raise ValueError(f"{text!r}: '~' must be followed by 0 or 1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def resolve(doc: Any, tokens: tuple[str, ...]) -> Any:
    """The value at `tokens` in `doc`, or `MISSING`."""
    for token in tokens:
        if type(doc) is dict:
            doc = doc.get(token, MISSING)
        elif type(doc) is list and _INDEX.match(token) and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            return MISSING
        if doc is MISSING:
            return doc
    return doc


def _wrong(where: str, value: Any, want: str) -> str:
    return f"{where}: missing" if value is MISSING else f"{where}: not {want}"


def content_id(event: Any) -> str:
    """The id of an event that carries none: the SHA-256 of its canonical JSON (keys sorted at every
    level, no whitespace), so an exact re-send is a duplicate."""
    return "sha256:" + hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Roles:
    """A pack's roles; `None` for id, source or region means the events carry none."""

    id: str | None = DEFAULTS["id"]
    time: str = DEFAULTS["time"]
    source: str | None = DEFAULTS["source"]
    region: str | None = DEFAULTS["region"]
    payload: str = DEFAULTS["payload"]
    time_zone: str | None = None
    time_unit: str | None = None
    unknown_sources: str = "reject"
    # the pack's one source, for a pack whose events do not say theirs
    only_source: str | None = None
    _paths: dict[str, tuple[str, ...] | None] = field(default_factory=dict, compare=False, repr=False)
    _default: bool = field(default=False, compare=False, repr=False)
    _uses_kind: bool = field(default=False, compare=False, repr=False)
    # what a time without an offset is read with ("Z" for UTC), or None
    _zone: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Pointers parsed once; what the per-record questions need, worked out once."""
        paths = {name: None if getattr(self, name) is None else parse_pointer(getattr(self, name))
                 for name in DEFAULTS}
        object.__setattr__(self, "_paths", paths)
        default = all(getattr(self, name) == pointer for name, pointer in DEFAULTS.items()) and \
            self.time_zone is None and self.time_unit is None and self.only_source is None
        object.__setattr__(self, "_default", default)
        object.__setattr__(self, "_uses_kind", any(p and p[0] == "kind" for p in paths.values()))
        zone = "Z" if self.time_zone in ("UTC", "Z") else self.time_zone
        object.__setattr__(self, "_zone", zone)

    @property
    def is_default(self) -> bool:
        """evtool's own layout, which the whole-line fast paths read without a parse."""
        return self._default

    def top_level(self) -> dict[str, str] | None:
        """Each role's field name when every role is a field of the event itself (no `payload`
        when the payload is the whole event); None when one is nested."""
        if any(p is not None and len(p) > 1 for p in self._paths.values()):
            return None
        return {role: p[0] for role, p in self._paths.items() if p}

    def tokens(self, role: str) -> tuple[str, ...] | None:
        """The reference tokens of a role's pointer; None for a role the events do not carry."""
        return self._paths[role]

    def name(self, role: str) -> str:
        """How a dead letter names the field of a role: its pointer without the first '/'."""
        pointer = getattr(self, role)
        return pointer[1:] if pointer else "the event"

    def is_derived(self, record: dict[str, Any]) -> bool:
        """A window, metric, alert or dead letter rather than an event: by its `kind`, and when
        an event field of that name is one of the roles, by the derived kinds alone."""
        if "kind" not in record:
            return False
        return not self._uses_kind or record["kind"] in DERIVED_KINDS

    def get(self, event: Any, role: str) -> Any:
        path = self._paths[role]
        if path is None:
            return MISSING
        if len(path) == 1 and type(event) is dict:
            return event.get(path[0], MISSING)
        return resolve(event, path)

    def event_id(self, event: Any) -> str:
        if self.id is None:
            return content_id(event)
        value = self.get(event, "id")
        if type(value) is not str:
            raise RoleError(_wrong(self.name("id"), value, "a string"))
        return value

    def event_id_or_none(self, event: Any) -> str | None:
        """The id a dead letter names, when the event has a readable one."""
        try:
            return self.event_id(event)
        except RoleError:
            return None

    def time_us(self, event: Any) -> int:
        return self.time_of(self.get(event, "time"))

    def time_of(self, value: Any) -> int:
        """The time role's value as µs since the epoch, by the pack's unit or zone; RoleError."""
        if self.time_unit is not None:
            return self._time_in_unit(value, self.time_unit)
        if type(value) is not str:
            raise RoleError(_wrong(self.name("time"), value, "a string"))
        zone = self._zone
        if zone is not None and _NAIVE(value) is not None:
            # no offset, so the RFC 3339 reading would fail: the pack's zone first, the shape
            # checked by one match (by hand, it took a third of aggregate on the download monitor)
            shaped = shaped_us(value + zone)
            if shaped is not None:
                return shaped
        try:
            return instant_us(value)
        except TimeError as exc:
            if zone is None:
                raise RoleError(str(exc).replace("timestamp", self.name("time"), 1)) from None
        try:
            return instant_us(value + zone)
        except TimeError:
            raise RoleError(f"{self.name('time')}: {value!r} is not a date-time, with an offset or "
                            f"without one (read in {self.time_zone})") from None

    def _time_in_unit(self, value: Any, unit: str) -> int:
        """An epoch number in the pack's unit (seconds may be fractional), checked in range."""
        where = self.name("time")
        if type(value) not in (int, float):
            raise RoleError(_wrong(where, value, f"a number of {unit} since the epoch"))
        try:
            at: int = round(value * UNITS[unit])
        except (OverflowError, ValueError):
            raise RoleError(f"{where}: {value!r} is not a time") from None
        if not MIN_US <= at <= MAX_US:
            raise RoleError(f"{where}: {value!r} is outside the years 0001-9999 in UTC")
        return at

    def source_of(self, event: Any) -> str:
        if self.source is None:
            return self.only_source or ""
        value = self.get(event, "source")
        if type(value) is not str:
            raise RoleError(_wrong(self.name("source"), value, "a string"))
        return value

    def region_of(self, event: Any) -> str:
        if self.region is None:
            return ALL_REGIONS
        value = self.get(event, "region")
        if type(value) is not str:
            raise RoleError(_wrong(self.name("region"), value, "a string"))
        return value

    def payload_of(self, event: Any) -> Any:
        """The part the source's schema judges; RoleError when it is missing."""
        value = self.get(event, "payload")
        if value is MISSING:
            raise RoleError(f"{self.name('payload')}: missing")
        return value


def roles_from(meta: dict[str, Any], sources: list[str], where: str) -> Roles:
    """The roles `pack.json` declares (its `fields`, `time_zone`, `time_unit`, `unknown_sources`);
    ValueError naming the field."""
    fields = meta.get("fields", {})
    if not isinstance(fields, dict):
        raise ValueError(f"{where}pack.json: 'fields' must be an object of role: JSON Pointer")
    unknown = set(fields) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{where}pack.json: fields.{sorted(unknown)[0]} is not a role "
                         f"(roles: {', '.join(DEFAULTS)})")
    chosen: dict[str, Any] = {**DEFAULTS, **fields}
    for role, pointer in chosen.items():
        if pointer is None and role in NULLABLE:
            continue
        if not isinstance(pointer, str):
            raise ValueError(f"{where}pack.json: fields.{role} must be a JSON Pointer"
                             + (" or null" if role in NULLABLE else ""))
        if pointer == "" and role != "payload":
            raise ValueError(f"{where}pack.json: fields.{role} cannot be the whole event ('')")
        try:
            parse_pointer(pointer)
        except ValueError as exc:
            raise ValueError(f"{where}pack.json: fields.{role}: {exc}") from None
    zone, unit = meta.get("time_zone"), meta.get("time_unit")
    if zone is not None and not (isinstance(zone, str) and _ZONE.match(zone)):
        raise ValueError(f"{where}pack.json: time_zone must be \"UTC\" or \"+hh:mm\" / \"-hh:mm\"")
    if unit is not None and unit not in UNITS:
        raise ValueError(f"{where}pack.json: time_unit must be one of {', '.join(UNITS)}")
    if zone is not None and unit is not None:
        raise ValueError(f"{where}pack.json: time_zone and time_unit do not go together")
    accept = meta.get("unknown_sources", "reject")
    if accept not in ("reject", "accept"):
        raise ValueError(f"{where}pack.json: unknown_sources must be \"reject\" or \"accept\"")
    if chosen["source"] is None and len(sources) != 1:
        raise ValueError(f"{where}pack.json: fields.source is null, so the pack needs exactly one "
                         f"payloads/<source>.json (it has {len(sources)})")
    return Roles(chosen["id"], chosen["time"], chosen["source"], chosen["region"], chosen["payload"],
                 zone, unit, accept, sources[0] if chosen["source"] is None else None)
