"""Choosing a pack from the options, and showing what the packs hold."""

from __future__ import annotations

from typing import Any

import click

from evtool.core.pack import Pack, PackError
from evtool.core.roles import Roles
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
    return "\n".join(lines)


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
