"""What a pack's schema may hold: keyword values that make sense, and the draft evtool judges by.

Checked once at load (`pack.check_schema`), so a pack that would crash a stage on its first
event (`multipleOf: 0`, an infinite bound, a `$ref` to itself, a schema nested past reason) is
a usage error naming the file and the keyword instead.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from typing import Any


class RuleError(ValueError):
    """A keyword no validator can apply; the message names it and where it stands."""

MAX_DEPTH = 64
# keywords of drafts 2019-09 and 2020-12 that change a verdict: a draft-7 validator ignores them
LATER_DRAFTS = ("unevaluatedProperties", "unevaluatedItems", "dependentRequired", "dependentSchemas",
                "minContains", "maxContains", "prefixItems", "$dynamicRef", "$dynamicAnchor",
                "$recursiveRef", "$recursiveAnchor")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependencies")
_SCHEMA_ONE = ("additionalProperties", "additionalItems", "contains", "propertyNames", "if", "then",
               "else", "not", "items")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def check_rules(schema: dict[str, Any]) -> None:
    """A RuleError naming the keyword of the first rule no validator can apply."""
    for path, node in _subschemas(schema, "", 0):
        for keyword in LATER_DRAFTS:
            if keyword in node:
                raise RuleError(f"{keyword} at {path or '/'} is a keyword of JSON Schema "
                                "2019-09/2020-12; evtool judges by draft 7 and would ignore it")
        multiple = node.get("multipleOf")
        if multiple is not None and not (_number(multiple) and multiple > 0):
            raise RuleError(f"multipleOf at {path or '/'} must be a number above 0")
        for keyword in _BOUNDS:
            if keyword in node and not _number(node[keyword]):
                raise RuleError(f"{keyword} at {path or '/'} must be a finite number a double can hold")
        for keyword in _COUNTS:
            if keyword in node and not (type(node[keyword]) is int and node[keyword] >= 0):
                raise RuleError(f"{keyword} at {path or '/'} must be a whole number >= 0")
        if "$ref" in node:
            _check_ref(schema, node["$ref"], path)


def _number(value: Any) -> bool:
    """A bound every stage can compare as a double: a finite float, or an int within its range
    (a JSON integer has no limit, and math.isfinite(10**400) raises)."""
    if type(value) is int:
        return abs(value) <= sys.float_info.max
    return type(value) is float and math.isfinite(value)


def _subschemas(node: Any, path: str, depth: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside `node` (itself first), with its JSON Pointer."""
    if depth > MAX_DEPTH:
        raise RuleError(f"nests deeper than {MAX_DEPTH} schemas at {path}")
    if not isinstance(node, dict):
        return
    yield path, node
    for keyword in _SCHEMA_MAPS:
        children = node.get(keyword)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from _subschemas(child, f"{path}/{keyword}/{name}", depth + 1)
    for keyword in _SCHEMA_ONE:
        yield from _subschemas(node.get(keyword), f"{path}/{keyword}", depth + 1)
    for keyword in _SCHEMA_LISTS:
        children = node.get(keyword)
        if isinstance(children, list):
            for i, child in enumerate(children):
                yield from _subschemas(child, f"{path}/{keyword}/{i}", depth + 1)


def _check_ref(root: dict[str, Any], ref: Any, path: str) -> None:
    """A `$ref` is a string pointing into this file, and following refs from it ends somewhere."""
    if not isinstance(ref, str):
        raise RuleError(f"$ref at {path or '/'} must be a string")
    seen = {ref}
    target = _resolve(root, ref, path)
    while isinstance(target, dict) and isinstance(target.get("$ref"), str):
        ref = target["$ref"]
        if ref in seen:
            raise RuleError(f"$ref {ref!r} at {path or '/'} refers to itself")
        seen.add(ref)
        target = _resolve(root, ref, path)


def _resolve(root: dict[str, Any], ref: str, path: str) -> Any:
    if not ref.startswith("#"):
        return None                       # outside refs are refused elsewhere, with their own line
    try:
        return follow(root, ref)
    except LookupError:
        raise RuleError(f"$ref {ref!r} at {path or '/'} points at nothing in this file") from None


def follow(root: Any, ref: str) -> Any:
    """What a '#/a/b' reference (a JSON Pointer) names inside `root`; LookupError if nothing."""
    node: Any = root
    for part in [p for p in ref.lstrip("#").split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise LookupError(ref)
    return node
