"""Quick acceptance of events under the shipped schemas, at a fraction of the generic cost.

These checks may only say "certainly valid": anything they do not accept goes to the compiled
JSON Schemas, which decide and explain. A payload check is used only for a source whose schema
is the shipped one (tests hold each check to its schema file).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from fastjsonschema.draft04 import CodeGeneratorDraft04

from evtool.core import model

Check = Callable[[Any], bool]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VERSION = re.compile(r"1\.[0-9]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
# The very expression the schemas' "format": "date-time" compiles to, so both agree.
_DATE_TIME = re.compile(CodeGeneratorDraft04.FORMAT_REGEXS["date-time"])
_ENVELOPE = frozenset(model.EVENT_FIELDS)
_INCIDENT = frozenset(("incident_type", "severity", "reported_by"))
_SURVEY = frozenset(("respondent_age", "victimized", "perceived_safety", "reported_to_police"))
_MIGRATION = frozenset(("case_type", "origin_country", "status", "applicants"))
_INCIDENT_TYPES = frozenset(model.INCIDENT_TYPES)
_REPORTERS = frozenset(model.REPORTERS)
_CASE_TYPES = frozenset(model.CASE_TYPES)
_CASE_STATUSES = frozenset(model.CASE_STATUSES)


def envelope_check(regions: Iterable[str]) -> Check:
    allowed = frozenset(regions)
    uuid, version, date_time = _UUID.fullmatch, _VERSION.fullmatch, _DATE_TIME.match

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


def _security(p: dict[str, Any]) -> bool:
    it, sev, rb = p["incident_type"], p["severity"], p["reported_by"]
    return (type(it) is str and it in _INCIDENT_TYPES and type(sev) is int and 1 <= sev <= 5
            and type(rb) is str and rb in _REPORTERS)


def _survey(p: dict[str, Any]) -> bool:
    age, vic, safe, rep = (p["respondent_age"], p["victimized"], p["perceived_safety"],
                           p["reported_to_police"])
    return (type(age) is int and 15 <= age <= 110 and type(vic) is bool and type(safe) is int
            and 1 <= safe <= 5 and type(rep) is bool and (vic or not rep))


def _migration(p: dict[str, Any]) -> bool:
    ct, oc, st, ap = p["case_type"], p["origin_country"], p["status"], p["applicants"]
    return bool(type(ct) is str and ct in _CASE_TYPES and type(oc) is str and _COUNTRY.fullmatch(oc)
                and type(st) is str and st in _CASE_STATUSES and type(ap) is int and 1 <= ap <= 50)


PAYLOAD_CHECKS: dict[str, tuple[frozenset[str], Callable[[dict[str, Any]], bool]]] = {
    "security.incident": (_INCIDENT, _security),
    "survey.victimization": (_SURVEY, _survey),
    "migration.case": (_MIGRATION, _migration),
}


def fast_accept(regions: Iterable[str], sources: Iterable[str]) -> Check:
    """True only for events certainly valid; `sources` are those still under the shipped schema."""
    envelope = envelope_check(regions)
    payloads = {s: PAYLOAD_CHECKS[s] for s in sources if s in PAYLOAD_CHECKS}

    def accept(ev: Any) -> bool:
        if type(ev) is not dict or ev.keys() != _ENVELOPE or not envelope(ev):
            return False
        entry = payloads.get(ev["source"])
        if entry is None:
            return False
        fields, check = entry
        payload = ev["payload"]
        return payload.keys() == fields and check(payload)

    return accept
