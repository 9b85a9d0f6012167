"""wire.json read into a Wire: checked against the format's JSON Schema, then for sense (every
exchange used is declared with its type), every problem an error naming the file and the field."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fastjsonschema

from evtool.core.roles import parse_pointer
from evtool.core.wire import Binary, Foreign, SqliteRecord, Wire, WireError, check_names, side_topology
from evtool.core.wiremap import compile_expr

_checkers: dict[int, Callable[[Any], Any]] = {}


def check_format(doc: Any, schema: Mapping[str, Any], where: str) -> None:
    """`doc` against wire.json's format, or a WireError naming the file and the field."""
    check = _checkers.get(id(schema))
    if check is None:
        check = _checkers[id(schema)] = fastjsonschema.compile(dict(schema))
    try:
        check(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        field = "".join(f"[{p}]" if str(p).isdigit() else f".{p}" for p in exc.path[1:])
        field = field.lstrip(".") or "(the document)"
        rule = f" (rule: {exc.rule})" if exc.rule else ""
        message = exc.message.removeprefix(exc.name or "data").strip()
        raise WireError(f"{where}: {field}: {message}{rule}") from None


def wire_from(doc: Any, schema: Mapping[str, Any] | None, sources: Sequence[str], where: str) -> Wire:
    """The Wire a wire.json describes; `sources` are the pack's (what "$sources" means); `schema`
    None for a shipped file, which the tests hold to the format."""
    if schema is not None:
        check_format(doc, schema, where)
    exchanges: dict[str, str] = doc["exchanges"]
    sides = {}
    for stage, by_side in doc["stages"].items():
        for side, body in by_side.items():
            sides[(stage, side)] = side_topology(body, exchanges, sources,
                                                 f"{where}: stages.{stage}.{side}")
    check_names(list(doc.get("routes", {}).values()), f"{where}: routes")
    dead_doc = doc["dead_letters"]
    dead = side_topology(dead_doc, exchanges, sources, f"{where}: dead_letters")
    records = {kind: tuple((name, compile_expr(e)) for name, e in fields.items())
               for kind, fields in doc.get("records", {}).items()}
    foreign = tuple(_foreign(shape, f"{where}: foreign[{at}]")
                    for at, shape in enumerate(doc.get("foreign", ())))
    replay = doc.get("replay", {})
    sqlite = replay.get("sqlite")
    binary = doc.get("binary")
    return Wire(
        sides=sides, dead=dead, routes=dict(doc.get("routes", {})),
        dead_letter_body=dead_doc.get("body", "record"),
        content_type=doc.get("content_type", "application/json"), records=records,
        foreign=foreign, binary=_binary(binary) if binary else None,
        sqlite=_sqlite(sqlite) if sqlite else None,
        jsonl_event=replay["jsonl"]["event"] if "jsonl" in replay else None, document=doc,
        where=where)


def _pointers(values: Any, where: str) -> tuple[tuple[str, ...], ...]:
    try:
        return tuple(parse_pointer(p) for p in values)
    except ValueError as exc:
        raise WireError(f"{where}: {exc}") from None


def _foreign(shape: Mapping[str, Any], where: str) -> Foreign:
    when = shape["when"]
    equals = when.get("equals", {})
    return Foreign(
        kind=shape["kind"],
        equals=tuple(zip(_pointers(equals, f"{where}.when.equals"), equals.values(), strict=True)),
        has=_pointers(when.get("has", ()), f"{where}.when.has"),
        lacks=_pointers(when.get("lacks", ()), f"{where}.when.lacks"),
        fields=tuple((name, compile_expr(e)) for name, e in shape["record"].items()))


def _binary(doc: Mapping[str, Any]) -> Binary:
    return Binary(prefixes=tuple(doc["headers"]), body=doc["body"], body_base64=doc.get("body_base64"),
                  content_type=doc.get("content_type"))


def _sqlite(doc: Mapping[str, Any]) -> SqliteRecord:
    trace = doc.get("trace")
    return SqliteRecord(
        table=doc["table"], fields=tuple(doc["fields"].items()),
        json_fields=tuple(doc.get("json_fields", {}).items()),
        omit_null=frozenset(doc.get("omit_null", ())),
        trace=(trace["table"], trace["event"], trace["metric"]) if trace else None)
