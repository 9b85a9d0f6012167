"""Choosing a pack from the options, and showing what the packs hold."""

from __future__ import annotations

from typing import Any

import click
import orjson

from evtool.core.pack import Pack, PackError
from evtool.core.roles import Roles
from evtool.core.wire import Topology, Wire
from evtool.schemas import builtin_packs, load_pack, schema_dir


def pack_from_options(spec: str | None, schema_dir_path: str | None = None,
                      regions: str | None = None) -> Pack:
    """--pack, overlaid by --schema-dir and --regions; a broken pack is a usage error (exit 2)."""
    try:
        pack = load_pack(spec)
        if schema_dir_path:
            pack = pack.with_payloads(schema_dir(schema_dir_path))
        if regions is not None:
            pack = pack.with_regions([r.strip() for r in regions.split(",") if r.strip()])
    except PackError as exc:
        raise click.UsageError(str(exc)) from None
    return pack


def _rule(schema: Any) -> str:
    """One schema as a short phrase: `integer 1..5`, `one of a b c`, `string ^corr-…$`."""
    if not isinstance(schema, dict):
        return "anything"
    parts: list[str] = []
    kind = schema.get("type")
    if kind:
        parts.append("/".join(kind) if isinstance(kind, list) else str(kind))
    if "enum" in schema:
        parts.append("one of " + " ".join(map(str, schema["enum"])))
    if "const" in schema:
        parts.append(f"= {schema['const']!r}")
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        parts.append(f"{'' if low is None else low}..{'' if high is None else high}")
    for key in ("format", "pattern"):
        if key in schema:
            parts.append(f"{key} {schema[key]}")
    if "properties" in schema and kind != "object":
        parts.append("object")
    if "examples" in schema:
        parts.append("e.g. " + ", ".join(map(str, schema["examples"][:4])))
    rule = ", ".join(parts) or "anything (not checked)"
    hint = schema.get("x-generate")
    if isinstance(hint, dict) and set(hint) - {"required", "properties"}:
        rule += f" [gen makes: {_rule({k: v for k, v in hint.items() if k != 'x-generate'})}]"
    return rule


def _fields(schema: dict[str, Any], indent: str) -> list[str]:
    props = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required", []))
    lines = []
    for name in [*props, *(r for r in schema.get("required", []) if r not in props)]:
        mark = "" if name in required else " (optional)"
        sub = props.get(name, {})
        lines.append(f"{indent}{name}{mark}: {_rule(sub)}")
        if isinstance(sub, dict) and ("properties" in sub or "required" in sub):
            lines += _fields(sub, indent + "  ")
    if schema.get("additionalProperties") is False:
        lines.append(f"{indent}(no other fields)")
    elif props:
        lines.append(f"{indent}(other fields allowed)")
    return lines


def describe_pack(pack: Pack) -> str:
    """What a pack holds, for people: sources and weights, regions, the envelope, each payload."""
    total = sum(pack.weights.values()) or 1.0
    lines = [f"{pack.name}: {pack.description}", f"  from: {pack.where.rstrip(': ')}",
             "  sources (weight for gen): " + ", ".join(
                 f"{s} {pack.weights[s] / total:.0%}" for s in pack.sources),
             f"  roles: {describe_roles(pack.roles)}",
             f"  regions: {' '.join(pack.regions) or '(any)'}",
             f"  burst: {pack.burst.source}, {pack.burst.low}-{pack.burst.high} events",
             "  envelope:", *_fields(pack.envelope, "    ")]
    for source in pack.sources:
        lines += [f"  payload of {source}:", *_fields(pack.payloads[source], "    ")]
    return "\n".join([*lines, *describe_wire(pack.wire)])


def _side(topology: Topology) -> str:
    """One side of a stage on the broker, in a line."""
    said = []
    if topology.queue is not None:
        said.append("consume " + ", ".join(q or "(a private queue)"
                                           for q in (topology.queue, *topology.also_consume)))
    if topology.exchange is not None:
        key = f"key {topology.routing_key}" if topology.routing_key else "key by record"
        said.append(f"publish to {topology.exchange or '(the default exchange)'}, {key}")
    binds: dict[tuple[str, str], list[str]] = {}
    for b in topology.bindings:
        binds.setdefault((b.queue or "(private)", b.exchange), []).append(b.key)
    said += [f"{q} <- {ex} [{' '.join(keys)}]" for (q, ex), keys in binds.items()]
    named = {topology.queue, *topology.also_consume, *(b.queue for b in topology.bindings)}
    if alone := [q for q in topology.queues if q not in named]:
        said.append("declares " + " ".join(alone))
    if topology.only_mandatory:
        said.append("other keys may go unrouted")
    elif topology.optional_keys:
        said.append(f"may go unrouted: {' '.join(topology.optional_keys)}")
    return "; ".join(said)


def describe_wire(wire: Wire) -> list[str]:
    """The pack's broker side (its wire.json, or evtool's), for people."""
    doc = wire.document
    lines = [f"  wire (from {wire.where}):",
             "    exchanges: " + ", ".join(f"{n} ({t})" for n, t in doc.get("exchanges", {}).items())]
    lines += [f"    {stage} {side}: {_side(t)}" for (stage, side), t in wire.sides.items()]
    lines.append(f"    dead letters ({wire.dead_letter_body}): {_side(wire.dead)}")
    if wire.routes:
        lines.append("    derived records route by kind: " + ", ".join(
            f"{k} {v}" for k, v in wire.routes.items()))
    if wire.content_type != "application/json":
        lines.append(f"    content type: {wire.content_type}")
    for kind, fields in wire.records.items():
        lines.append(f"    a {kind} also carries: " + ", ".join(n for n, _ in fields))
    for shape in doc.get("foreign", ()):
        lines.append(f"    reads as a {shape['kind']}: a record where "
                     + orjson.dumps(shape["when"]).decode())
    if wire.binary is not None:
        lines.append("    reads binary-mode messages: attributes in headers "
                     + " ".join(f"{p}<name>" for p in wire.binary.prefixes))
    if wire.sqlite is not None:
        lines.append(f"    replay reads a foreign SQLite audit: table {wire.sqlite.table}")
    if wire.jsonl_event is not None:
        lines.append(f"    replay reads a foreign JSON-lines log: the event at {wire.jsonl_event}")
    return lines


def list_packs(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name in builtin_packs():
        pack = load_pack(name)
        click.echo(f"{name:10} {pack.description}")
    click.echo("\nevtool --show-pack NAME|DIR shows what a pack holds; --pack DIR uses your own.")
    ctx.exit()


def describe_roles(roles: Roles) -> str:
    """Where each role lives, as the pack says it."""
    time = roles.time + (f" (epoch {roles.time_unit})" if roles.time_unit else "")
    time += f" (without an offset: in {roles.time_zone})" if roles.time_zone else ""
    parts = [f"id {roles.id or '(none: sha256 of the event)'}", f"time {time}",
             f"source {roles.source or f'(none: {roles.only_source})'}",
             f"region {roles.region or '(none: all)'}",
             f"payload {roles.payload or '(the whole event)'}"]
    if roles.unknown_sources == "accept":
        parts.append("unknown sources accepted")
    return ", ".join(parts)


def show_pack(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    try:
        click.echo(describe_pack(load_pack(value)))
    except PackError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.exit()
