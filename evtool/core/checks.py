"""JSON Schemas compiled once (fastjsonschema), and their verdicts as one readable line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
import orjson

from evtool.core.instant import is_instant
from evtool.core.pack import PackError, Schema
from evtool.core.patterns import linear

Check = Callable[..., Any]
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# fastjsonschema knows no "uuid" format, without this a pack saying so would check nothing; and
# "date-time" is the one time rule every stage applies, so validate never passes what aggregate
# or audit cannot place.
FORMATS: dict[str, Any] = {"uuid": UUID_PATTERN, "date-time": is_instant}
Invalid = fastjsonschema.JsonSchemaValueException


def _refuse(uri: str) -> Any:
    raise PackError(f"$ref {uri!r}: schemas never fetch anything")


# Every scheme urllib knows; a relative URI with no scheme cannot be opened at all.
_NO_FETCH = {scheme: _refuse for scheme in ("http", "https", "file", "ftp", "data")}


def _without_ids(schema: Any) -> Any:
    """The schema without `$id`s: references then resolve inside this document, never by URL."""
    if isinstance(schema, dict):
        return {k: _without_ids(v) for k, v in schema.items() if k != "$id"}
    if isinstance(schema, list):
        return [_without_ids(v) for v in schema]
    return schema


def _patterns_in(schema: Any) -> set[str]:
    """Every `pattern` and `patternProperties` key a schema holds, at any depth."""
    found: set[str] = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                found.update(node["patternProperties"])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


# fastjsonschema writes an enum into its code (and every error's definition): 50,000 values took
# 1.7 s and 500 MB to load. A large enum of strings is checked as a format, by set membership.
LARGE_ENUM = 256
_ENUM_FORMAT = "x-evtool-enum-"        # + its number of values + "-" + which one


def _large_enums(node: Any, formats: dict[str, Any]) -> Any:
    """`node` with every large enum of strings made a format in `formats`."""
    if isinstance(node, list):
        return [_large_enums(v, formats) for v in node]
    if not isinstance(node, dict):
        return node
    done = {k: _large_enums(v, formats) for k, v in node.items()}
    values = node.get("enum")
    if (isinstance(values, list) and len(values) > LARGE_ENUM and "format" not in node
            and node.get("type", "string") == "string" and all(type(v) is str for v in values)):
        name = f"{_ENUM_FORMAT}{len(set(values))}-{len(formats)}"
        formats[name] = frozenset(values).__contains__
        del done["enum"]
        done.update({"type": "string", "format": name})
    return done


def compile_schema(schema: Schema, what: str, formats: dict[str, Any] | None = None) -> Check:
    """Compile once; a broken schema is a one-line PackError naming it, never a traceback."""
    try:
        formats = {**FORMATS, **(formats or {})}
        check = fastjsonschema.compile(_large_enums(_without_ids(schema), formats), handlers=_NO_FETCH,
                                       formats=formats, use_default=False)
        # the code fastjsonschema made looks the schema's patterns up here, by the pattern as
        # written: RE2 runs them, never `re` (the formats' entries are evtool's own)
        patterns = getattr(check, "func", check).__globals__.get("REGEX_PATTERNS", {})
        for written in _patterns_in(schema) & patterns.keys():
            patterns[written] = linear(written)
        return check
    except PackError as exc:
        raise PackError(f"{what}: {exc}") from None
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise PackError(f"{what}: invalid JSON Schema ({exc})") from None
    except Exception as exc:  # a bad regex or keyword value surfaces as anything
        raise PackError(f"{what}: invalid JSON Schema ({type(exc).__name__}: {exc})") from None


def predicate(schema: Schema, what: str) -> Callable[[Any], bool]:
    """True when the value passes `schema`."""
    check = compile_schema(schema, what)

    def holds(value: Any) -> bool:
        try:
            check(value)
        except Invalid:
            return False
        return True

    return holds


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def describe(exc: fastjsonschema.JsonSchemaValueException, what: str = "event") -> str:
    """fastjsonschema's message with its `data.` prefix dropped and the rule named."""
    message = exc.message
    enum = exc.definition.get("format") if exc.rule == "format" and isinstance(exc.definition, dict) \
        else None
    if isinstance(enum, str) and enum.startswith(_ENUM_FORMAT):
        field = (exc.name or "data").removeprefix("data.")
        size = enum[len(_ENUM_FORMAT):].split("-")[0]
        return f"{field} must be one of the {size} values of its enum (rule: enum)"
    if exc.rule == "const" and isinstance(exc.definition, dict):
        message = f"{exc.name} must be {orjson.dumps(exc.definition.get('const')).decode()}"
    if message.startswith("data."):
        message = message[len("data."):]
    elif message.startswith("data "):
        message = f"{what} " + message[len("data "):]
    return f"{message} (rule: {exc.rule})" if exc.rule else message


def simple_predicate(schema: Schema) -> Check | None:
    """The common `if` (some properties with const or enum, maybe required) as plain Python;
    None for anything else, which the compiled schema then decides."""
    if set(schema) - {"properties", "required"} or not isinstance(schema.get("properties"), dict):
        return None
    required = schema.get("required", [])
    tests: list[tuple[str, list[Any]]] = []
    for name, sub in schema["properties"].items():
        if not isinstance(sub, dict) or len(sub) != 1:
            return None
        if "const" in sub:
            tests.append((name, [sub["const"]]))
        elif isinstance(sub.get("enum"), list):
            tests.append((name, sub["enum"]))
        else:
            return None

    if len(tests) == 1 and len(tests[0][1]) == 1 and required == [tests[0][0]]:
        (key, (want,)), kind = tests[0], type(tests[0][1][0])
        return lambda obj: key in obj and obj[key] == want and type(obj[key]) is kind

    def holds(obj: Any) -> bool:
        if not isinstance(obj, dict) or any(r not in obj for r in required):
            return False
        # JSON equality: 0 is not false, so the type must match too
        return all(name not in obj or any(obj[name] == v and type(obj[name]) is type(v) for v in allowed)
                   for name, allowed in tests)

    return holds
