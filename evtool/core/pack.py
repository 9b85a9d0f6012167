"""A pack: the vocabulary of one pipeline as JSON Schemas (envelope, one payload per source)."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from evtool.core.roles import Roles, roles_from
from evtool.core.schema_rules import RuleError, check_rules
from evtool.core.wire import Topology, Wire, WireError
from evtool.core.wirespec import wire_from

Schema = dict[str, Any]
GENERATE = "x-generate"


class PackError(ValueError):
    """A pack that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Burst:
    """What a burst is made of: one source, and a size drawn from [low, high]."""

    source: str
    low: int
    high: int


@dataclass(frozen=True)
class Pack:
    """Everything a stage needs to speak a pipeline's language; pure data."""

    name: str
    description: str
    weights: Mapping[str, float]
    envelope: Schema
    payloads: Mapping[str, Schema]
    burst: Burst
    where: str = ""
    builtin: bool = False
    wire: Wire = field(default_factory=lambda: Wire({}, Topology()))    # its broker side
    overlaid: frozenset[str] = field(default_factory=frozenset)
    roles: Roles = field(default_factory=Roles)

    @property
    def sources(self) -> list[str]:
        return sorted(self.payloads)

    @property
    def regions(self) -> tuple[str, ...]:
        if self.roles.region != "/region":
            return ()
        enum = self.envelope.get("properties", {}).get("region", {}).get("enum")
        return tuple(enum) if isinstance(enum, list) else ()

    def with_payloads(self, extra: Mapping[str, Schema]) -> Pack:
        """--schema-dir: payload schemas that add sources or replace the pack's."""
        payloads = {**self.payloads, **extra}
        weights = dict(self.weights)
        for source in extra:
            weights.setdefault(source, 1.0)
        return replace(self, payloads=payloads, weights=weights,
                       overlaid=self.overlaid | frozenset(extra))

    def with_regions(self, regions: list[str]) -> Pack:
        """--regions: the allowed regions replace the envelope's list."""
        if not regions:
            raise PackError("--regions: give at least one region")
        envelope = copy.deepcopy(self.envelope)
        region = envelope.setdefault("properties", {}).setdefault("region", {"type": "string"})
        if not isinstance(region, dict):
            raise PackError(f"{self.where}envelope.json: 'region' must be a schema object")
        region["enum"] = list(regions)
        region.pop("examples", None)
        return replace(self, envelope=envelope, overlaid=self.overlaid | {"envelope"})


def external_refs(schema: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, ref) for every $ref that does not point inside its own document."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                yield path or "/", value
            else:
                yield from external_refs(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from external_refs(value, f"{path}/{i}")


WireDoc = tuple[Any, Mapping[str, Any] | None, str]   # (wire.json, its format's schema, where)


def make_pack(meta: Any, envelope: Any, payloads: dict[str, Any], where: str,
              builtin: bool = False, wire_doc: WireDoc | None = None) -> Pack:
    """A Pack from its parsed files, or a PackError naming the file and the problem."""
    if not isinstance(meta, dict):
        raise PackError(f"{where}pack.json: must be a JSON object")
    name, description = meta.get("name"), meta.get("description", "")
    if not isinstance(name, str) or not name:
        raise PackError(f"{where}pack.json: 'name' must be a non-empty string")
    if not isinstance(description, str):
        raise PackError(f"{where}pack.json: 'description' must be a string")
    for file, schema in (("envelope.json", envelope),
                         *((f"payloads/{s}.json", p) for s, p in payloads.items())):
        check_schema(schema, f"{where}{file}")
    if not payloads:
        raise PackError(f"{where}payloads/: no <source>.json in it")
    weights = _weights(meta.get("sources"), payloads, where)
    burst = _burst(meta.get("burst"), weights, where)
    if "wire" in meta:
        raise PackError(f"{where}pack.json: 'wire' is not a pack.json field: a pack's broker side "
                        "is its wire.json")
    try:
        wire = wire_from(*wire_doc[:2], sorted(payloads), wire_doc[2]) if wire_doc else Wire({}, Topology())
    except WireError as exc:
        raise PackError(str(exc)) from None
    try:
        roles = roles_from(meta, sorted(payloads), where)
    except ValueError as exc:
        raise PackError(str(exc)) from None
    return Pack(name, description, weights, envelope, payloads, burst, where, builtin, wire=wire,
                roles=roles)


def check_schema(schema: Any, where: str) -> None:
    """A pack file must be a schema object whose references stay inside it."""
    if not isinstance(schema, dict):
        raise PackError(f"{where}: a JSON Schema must be an object")
    for at, ref in external_refs(schema):
        raise PackError(f"{where}: $ref {ref!r} at {at} points outside this file; "
                        "schemas never fetch anything (use '#/definitions/...')")
    try:
        check_rules(schema)
    except RuleError as exc:
        raise PackError(f"{where}: {exc}") from None


def _weights(sources: Any, payloads: dict[str, Any], where: str) -> dict[str, float]:
    if sources is None:
        return {s: 1.0 for s in payloads}
    if not isinstance(sources, dict) or not sources:
        raise PackError(f"{where}pack.json: 'sources' must be an object of source: weight")
    weights: dict[str, float] = {}
    for source, weight in sources.items():
        if type(weight) not in (int, float) or not 0 <= weight < math.inf:
            raise PackError(f"{where}pack.json: the weight of {source!r} must be a number >= 0")
        if source not in payloads:
            raise PackError(f"{where}pack.json: source {source!r} has no payloads/{source}.json")
        weights[source] = float(weight)
    for source in payloads:
        weights.setdefault(source, 0.0)
    if not any(weights.values()):
        raise PackError(f"{where}pack.json: at least one source needs a weight above 0")
    return weights


def _burst(burst: Any, weights: dict[str, float], where: str) -> Burst:
    heaviest = max(weights, key=lambda s: (weights[s], s))
    if burst is None:
        return Burst(heaviest, 50, 50)
    if not isinstance(burst, dict):
        raise PackError(f"{where}pack.json: 'burst' must be an object")
    source = burst.get("source", heaviest)
    if source not in weights:
        raise PackError(f"{where}pack.json: burst source {source!r} is not a source of the pack")
    size = burst.get("size", 50)
    if isinstance(size, list):
        low, high = size if len(size) == 2 else (None, None)
    else:
        low = high = size
    if not (type(low) is int and type(high) is int and 1 <= low <= high):
        raise PackError(f"{where}pack.json: burst 'size' must be N or [LOW, HIGH] (1 <= LOW <= HIGH)")
    return Burst(source, low, high)
