"""Checks for the records stages derive (window, metric, alert, deadletter) before anyone trusts them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from evtool.core.checks import Check, Invalid, compile_schema, describe
from evtool.core.instant import bound_us
from evtool.core.invariants import Invariant, metric_sums, window_sums
from evtool.core.pack import Schema
from evtool.core.quickcheck import quick
from evtool.core.wire import Wire


def _later(_value: Any) -> bool:
    """date-time in a derived record: the invariants parse it (once) and say what is wrong."""
    return True


def _window(rec: dict[str, Any]) -> str | None:
    total = rec["total"]
    if len(rec["event_ids"]) != total:
        return f"total {total} but {len(rec['event_ids'])} event_ids"
    return window_sums(rec)


def _metric(rec: dict[str, Any]) -> str | None:
    total = rec["total"]
    if len(rec["input_event_ids"]) != total:
        return f"total {total} but {len(rec['input_event_ids'])} input_event_ids"
    return metric_sums(rec)


def _alert(rec: dict[str, Any]) -> str | None:
    try:
        for field in ("window_start", "window_end"):
            if field in rec:
                bound_us(rec[field])
    except ValueError as exc:
        return str(exc)
    return None


INVARIANTS: dict[str, Invariant] = {"window": _window, "metric": _metric, "alert": _alert}


_STRINGS = {"type": "array", "items": {"type": "string"}}


def _split_id_lists(schema: Schema) -> tuple[Schema, list[str]]:
    """The schema without its arrays of strings (id lists, 50,000 long), and their names: a
    compiled schema checks each item in Python, `_all_strings` does it at C speed."""
    props = schema.get("properties", {})
    lists = [name for name, sub in props.items() if sub == _STRINGS]
    if not lists:
        return schema, []
    kept = {name: sub for name, sub in props.items() if name not in lists}
    return {**schema, "properties": {**kept, **{n: {"type": "array"} for n in lists}}}, lists


def _all_strings(values: list[Any]) -> bool:
    return set(map(type, values)) <= {str}


class DerivedChecker:
    """Says why a derived record of a known kind cannot be trusted; None for good and unknown kinds.

    Instants are parsed once, by the invariants (the schemas' date-time format defers to them).
    """

    def __init__(self, schemas: Mapping[str, Schema], wire: Wire | None = None) -> None:
        """`wire`: the pack's, whose fields a derived record may carry beside evtool's: they
        must agree with its own."""
        self.wire = wire if wire is not None and wire.records else None
        self._schemas = schemas
        self._compiled: dict[str, tuple[Check, list[str], Callable[[Any], bool] | None]] = {}

    def _kind(self, kind: Any) -> tuple[Check, list[str], Callable[[Any], bool] | None] | None:
        """A kind's compiled schema, id lists and fast path, compiled when first met: a stage
        that never meets a derived record does not pay for compiling them at start."""
        found = self._compiled.get(kind) if type(kind) is str else None
        if found is None and type(kind) is str and kind in self._schemas:
            lean, lists = _split_id_lists(self._schemas[kind])
            found = self._compiled[kind] = (
                compile_schema(lean, f"records/{kind}.json", {"date-time": _later}), lists, quick(lean, lean))
        return found

    def fast(self, record: dict[str, Any]) -> bool:
        """The compiled fast path's "certainly valid" for the record's schema (id lists apart)."""
        found = self._kind(record.get("kind"))
        return found is not None and found[2] is not None and found[2](record)

    def schema_problem(self, record: dict[str, Any]) -> str | None:
        """The compiled schema's verdict alone (id lists apart)."""
        found = self._kind(record.get("kind"))
        try:
            if found is not None:
                found[0](record)
        except Invalid as exc:
            return describe(exc, f"{record['kind']} record")
        return None

    def problem(self, record: dict[str, Any]) -> str | None:
        kind = record.get("kind")
        found = self._kind(kind)
        if found is None:
            return None
        if not self.fast(record):
            problem = self.schema_problem(record)
            if problem is not None:
                return problem
        for name in found[1]:
            if name in record and not _all_strings(record[name]):
                return f"{name} must contain only strings (rule: items)"
        invariant = INVARIANTS.get(record["kind"])
        problem = invariant(record) if invariant is not None else None
        if problem is None and self.wire is not None:
            return self.wire.contradiction(record)
        return problem
