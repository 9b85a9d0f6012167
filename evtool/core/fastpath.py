"""Quick acceptance of events under the shipped schemas, at a fraction of the generic cost.

These checks may only say "certainly valid": anything they do not accept goes to the compiled
JSON Schemas, which decide and explain. A payload check is used only for a source whose schema
is the shipped one (tests hold each check to its schema file).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from evtool.core.instant import is_instant

Check = Callable[[Any], bool]
Schema = dict[str, Any]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VERSION = re.compile(r"1\.[0-9]+")
_COUNTRY = re.compile(r"[A-Z]{2}")


def _enum(schema: Schema, field: str) -> frozenset[str]:
    """The allowed values of one property, read from the pack's schema (its one source of truth)."""
    return frozenset(schema["properties"][field]["enum"])


def envelope_check(envelope: Schema) -> Check:
    allowed = _enum(envelope, "region")
    # the very function the schemas' "format": "date-time" runs, so both agree
    uuid, version, date_time = _UUID.fullmatch, _VERSION.fullmatch, is_instant

    def check(ev: Any) -> bool:
        eid, cid, ts, region = ev["event_id"], ev["correlation_id"], ev["timestamp"], ev["region"]
        sv = ev["schema_version"]
        return bool(
            type(eid) is str and uuid(eid) and type(cid) is str and uuid(cid)
            and type(ts) is str and date_time(ts) and type(region) is str and region in allowed
            and type(sv) is str and version(sv) and type(ev["source"]) is str
            and type(ev["payload"]) is dict
        )

    return check


def _security(schema: Schema) -> Callable[[dict[str, Any]], bool]:
    types, reporters = _enum(schema, "incident_type"), _enum(schema, "reported_by")

    def check(p: dict[str, Any]) -> bool:
        it, sev, rb = p["incident_type"], p["severity"], p["reported_by"]
        return (type(it) is str and it in types and type(sev) is int and 1 <= sev <= 5
                and type(rb) is str and rb in reporters)

    return check


def _survey(schema: Schema) -> Callable[[dict[str, Any]], bool]:
    def check(p: dict[str, Any]) -> bool:
        age, vic, safe, rep = (p["respondent_age"], p["victimized"], p["perceived_safety"],
                               p["reported_to_police"])
        return (type(age) is int and 15 <= age <= 110 and type(vic) is bool and type(safe) is int
                and 1 <= safe <= 5 and type(rep) is bool and (vic or not rep))

    return check


def _migration(schema: Schema) -> Callable[[dict[str, Any]], bool]:
    case_types, statuses = _enum(schema, "case_type"), _enum(schema, "status")
    country = _COUNTRY.fullmatch

    def check(p: dict[str, Any]) -> bool:
        ct, oc, st, ap = p["case_type"], p["origin_country"], p["status"], p["applicants"]
        return bool(type(ct) is str and ct in case_types and type(oc) is str and country(oc)
                    and type(st) is str and st in statuses and type(ap) is int and 1 <= ap <= 50)

    return check


PAYLOAD_CHECKS: dict[str, Callable[[Schema], Callable[[dict[str, Any]], bool]]] = {
    "security.incident": _security,
    "survey.victimization": _survey,
    "migration.case": _migration,
}


def fast_accept(envelope: Schema, payloads: Mapping[str, Schema], sources: Iterable[str]) -> Check:
    """True only for events certainly valid; `sources` are those still under the shipped schema."""
    check_envelope = envelope_check(envelope)
    fields = frozenset(envelope["properties"])
    checks = {
        s: (frozenset(payloads[s]["properties"]), PAYLOAD_CHECKS[s](payloads[s]))
        for s in sources if s in PAYLOAD_CHECKS
    }

    def accept(ev: Any) -> bool:
        if type(ev) is not dict or ev.keys() != fields or not check_envelope(ev):
            return False
        entry = checks.get(ev["source"])
        if entry is None:
            return False
        keys, check = entry
        payload = ev["payload"]
        return payload.keys() == keys and check(payload)

    return accept
