"""A pack from a sample of someone else's events: which field plays each role (and why), the
envelope and one payload schema per source, inferred by `infer.Profile`. Pure: events in, the
pack's files and a report out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evtool.core.infer import ENUM_MAX, Profile
from evtool.core.roles import parse_pointer

REGION_MAX = 64
# epoch numbers in a plausible range (2001-2096) for each unit
EPOCHS = {"s": (1e9, 4e9), "ms": (1e12, 4e12), "us": (1e15, 4e15)}
_TIME_NAMES = ("time", "timestamp", "ts", "date", "at")
_ID_NAMES = ("id", "event_id", "uuid")
_BODY_NAMES = ("payload", "data", "body", "content")


class LearnError(ValueError):
    """A sample no pack can be learned from (no events, no field holding a time in each)."""


@dataclass
class Learned:
    """A pack's files, as data, and why each role went where it did."""

    pack: dict[str, Any]
    envelope: dict[str, Any] | None
    payloads: dict[str, dict[str, Any]]
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def _named(name: str, hints: tuple[str, ...]) -> bool:
    low = name.lower()
    return low in hints or any(low.endswith(f"_{h}") or low.startswith(f"{h}_") for h in hints)


def _time_role(top: Profile, everywhere: list[str]) -> tuple[str, dict[str, Any], str]:
    """(field, extra pack.json keys, why) of the time; LearnError if no field is one."""
    ranked = sorted(everywhere, key=lambda n: not _named(n, _TIME_NAMES))
    for name in ranked:
        place = top.keys[name]
        if place.all_of("date-time"):
            return name, {}, "every value an RFC 3339 date-time with an offset"
        if place.all_of("naive"):
            return name, {"time_zone": "UTC"}, "every value a date-time without an offset: read as UTC"
    for name in ranked:
        place = top.keys[name]
        if set(place.types) <= {"integer", "number"} and place.seen:
            for unit, (low, high) in EPOCHS.items():
                if low <= place.low and place.high <= high:
                    return name, {"time_unit": unit}, f"every value a number of epoch {unit}"
    raise LearnError("no field holds a time in every event (an RFC 3339 date-time, one without "
                     "an offset, or epoch seconds, ms or us): a pack needs one")


def _id_role(events: Sequence[dict[str, Any]], top: Profile, everywhere: list[str],
             time: str) -> tuple[str | None, str]:
    ranked = sorted((n for n in everywhere if n != time and set(top.keys[n].types) == {"string"}),
                    key=lambda n: not _named(n, _ID_NAMES))
    for name in ranked:
        if len({e[name] for e in events}) == len(events):
            return name, "a string in every event, no two alike"
    return None, "no string field is unique in every event: ids are the SHA-256 of each event"


def _keyset(value: Any) -> frozenset[str]:
    return frozenset(value) if isinstance(value, dict) else frozenset()


def _purity(events: Sequence[dict[str, Any]], by: str, of: str | None) -> float:
    """How well one field's value predicts the shape (key set) of the payload (or the event)."""
    groups: dict[Any, Counter[frozenset[str]]] = {}
    for event in events:
        shape = _keyset(event[of] if of else event)
        groups.setdefault(event[by], Counter())[shape] += 1
    return sum(c.most_common(1)[0][1] for c in groups.values()) / len(events)


def _file_stems(values: set[str]) -> str | None:
    """Why these values cannot each name a `payloads/<source>.json` file, or None if they can:
    a '/' would lead out of the folder (a sample's `../../x` wrote where it pointed), and two
    names one case apart are one file where case is not told apart."""
    for value in sorted(values):
        if not value or "/" in value or "\0" in value or len(value.encode()) > 250 or value.startswith("."):
            return f"{value!r} cannot name a file in payloads/"
    if len({v.casefold() for v in values}) < len(values):
        return "two of its values differ only in case"
    return None


def infer_roles(events: Sequence[dict[str, Any]], top: Profile) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pack.json's fields and time keys, why each role went where it did)."""
    n = len(events)
    everywhere = [k for k, p in top.keys.items() if p.seen == n]
    time, time_keys, why_time = _time_role(top, everywhere)
    ident, why_id = _id_role(events, top, everywhere, time)
    # the payload: an object whose fields change from event to event, or one named as a body
    objects = [(len({_keyset(e[k]) for e in events}), _named(k, _BODY_NAMES), k) for k in everywhere
               if set(top.keys[k].types) == {"object"}]
    chosen = max((o for o in objects if o[0] > 1 or o[1]), default=None)
    payload = chosen[2] if chosen else None
    taken = {time, ident, payload}
    labels = [k for k in everywhere if k not in taken and set(top.keys[k].types) == {"string"}
              and not top.keys[k].overflow and 2 <= len(top.keys[k].distinct) <= REGION_MAX]
    shapes = len({_keyset(e[payload] if payload else e) for e in events})
    source, why_source = None, "no field's value predicts the events' shape: one source"
    if shapes > 1:
        scored = sorted(((_purity(events, k, payload), _named(k, ("source", "type", "kind")), k)
                         for k in labels if len(top.keys[k].distinct) <= ENUM_MAX), reverse=True)
        whose = "payload" if payload else "event"
        passed_over: list[str] = []
        for purity, _, name in (s for s in scored if s[0] >= 0.9):
            unnamable = _file_stems({str(v) for _, v in top.keys[name].distinct})
            if unnamable is None:
                source = name
                why_source = (f"its value predicts the {whose}'s fields in {purity:.0%} of events "
                              f"({len(top.keys[source].distinct)} values)")
                break
            passed_over.append(f"{_escaped(name)} predicts the {whose}'s fields, but {unnamable}")
        if source is None and passed_over:
            why_source = f"one source: {passed_over[0]}"
    regions = sorted((k for k in labels if k != source),
                     key=lambda k: (not _named(k, ("region", "zone", "area", "site", "location")),
                                    len(top.keys[k].distinct) < 2))
    region = regions[0] if regions else None
    fields = {"id": _pointer(ident), "time": _pointer(time), "source": _pointer(source),
              "region": _pointer(region), "payload": _pointer(payload) or ""}
    why = {
        "id": {"field": fields["id"], "why": why_id},
        "time": {"field": fields["time"], "why": why_time, **time_keys},
        "source": {"field": fields["source"], "why": why_source},
        "region": {"field": fields["region"],
                   "why": (f"another label in every event ({len(top.keys[region].distinct)} values)"
                           if region else "no other low-cardinality string: every event counts "
                           "under 'all'")},
        "payload": {"field": fields["payload"],
                    "why": "the object whose fields change from event to event" if payload else
                    "no object field: the source's schema judges the whole event"},
    }
    return {"fields": fields, **time_keys}, why


def _epoch_schema(seen: dict[str, Any], unit: str) -> dict[str, Any]:
    """The time as epoch numbers of any plausible instant, not the sample's span: the sample's
    own bounds made every later event a dead letter, and gen (which starts now) could make none."""
    low, high = EPOCHS[unit]
    return {"type": "integer" if seen.get("type") == "integer" else "number",
            "minimum": int(low), "maximum": int(high)}


def _pointer(name: str | None) -> str | None:
    return None if name is None else _escaped(name)


def _escaped(name: str) -> str:
    """A key as a JSON Pointer: '~' and '/' in it escaped."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def learn(events: Sequence[dict[str, Any]], name: str, closed: bool = True) -> Learned:
    """The pack a sample of events speaks."""
    if not events:
        raise LearnError("the sample holds no events (JSON objects) to learn from")
    top = Profile()
    for event in events:
        top.see(event)
    meta, why = infer_roles(events, top)
    fields = meta["fields"]
    # the keys themselves: a pointer escapes '/' and '~' in a key ("k/ind" is "/k~1ind")
    source = parse_pointer(fields["source"])[0] if fields["source"] else None
    payload = parse_pointer(fields["payload"])[0] if fields["payload"] else None
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        groups.setdefault(str(event[source]) if source else name, []).append(event)
    payloads = {}
    described = {_escaped(k): p.describe() for k, p in top.keys.items()}
    for src, held in sorted(groups.items()):
        profile = Profile()
        for event in held:
            profile.see(event[payload] if payload else event)
        if payload:
            described.update({f"{_escaped(payload)}{_escaped(k)} ({src})": p.describe()
                              for k, p in profile.keys.items()})
        payloads[src] = {"$schema": "http://json-schema.org/draft-07/schema#",
                         "title": f"{src}, as learned from {len(held)} events", **profile.schema(closed)}
    envelope = None
    if payload:
        envelope = {"$schema": "http://json-schema.org/draft-07/schema#",
                    "title": f"{name} envelope, as learned from {len(events)} events", **top.schema(closed)}
        envelope["properties"][payload] = {"type": "object"}
        if source:
            envelope["properties"][source] = {"type": "string"}
    if "time_unit" in meta:
        at = parse_pointer(fields["time"])[0]
        for schema in [envelope] if envelope is not None else payloads.values():
            schema["properties"][at] = _epoch_schema(schema["properties"][at], meta["time_unit"])
    weights = {src: round(len(held) / len(events), 4) for src, held in sorted(groups.items())}
    pack = {"name": name, "description": f"learned from a sample of {len(events)} events",
            "sources": weights, **meta}
    return Learned(pack, envelope, payloads, why, described)
