"""Whole-line acceptance without parsing, generated from a pack's schemas.

A line laid out as gen and orjson write an event (the schema's key order, plain ASCII strings,
small integers, no spaces) is matched by one regular expression built from the envelope and
payload schemas. A match is certainly a valid event with no duplicate key, so validate passes it
and aggregate reads its four fields from the match, neither parsing it. Anything the builder does
not understand gives no expression for that source; anything that does not match takes the
parsing path, which decides and explains. Only the timestamp is checked outside the expression,
by the same function the schemas' `date-time` format runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from evtool.core.pack import Pack

Schema = dict[str, Any]

# Keywords that only describe or steer generation: they never change a verdict.
INERT = {"$schema", "$id", "title", "description", "examples", "x-generate", "$comment"}
PLAIN = r'[\x20\x21\x23-\x5b\x5d-\x7e]'        # a JSON string character needing no escape, ASCII
TIMESTAMP = (r'[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?'
             r'(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])')
_SIMPLE_PATTERN = re.compile(r"\^((?:(?:\[[A-Za-z0-9-]+\]|[A-Za-z0-9-]|\\\.)(?:\{\d+(?:,\d+)?\}|[+*?])?)+)\$")
_VARIABLE = re.compile(r"[+*?]|\{\d+,\d*\}")
_LITERAL = re.compile(r'[^"\\\x00-\x1f\x7f]*')


class Unsupported(Exception):
    """A schema the builder cannot mirror exactly: no expression, the parsing path decides."""


def _same_length(lo: str, hi: str) -> list[str]:
    """Alternatives matching the decimal numbers lo..hi, both of one length."""
    if lo == hi:
        return [lo]
    if len(lo) == 1:
        return [f"[{lo}-{hi}]"]
    if lo[0] == hi[0]:
        return [lo[0] + rest for rest in _same_length(lo[1:], hi[1:])]
    n = len(lo) - 1
    out = [lo[0] + rest for rest in _same_length(lo[1:], "9" * n)]
    if int(lo[0]) + 1 <= int(hi[0]) - 1:
        out.append(f"[{int(lo[0]) + 1}-{int(hi[0]) - 1}][0-9]{{{n}}}")
    out += [hi[0] + rest for rest in _same_length("0" * n, hi[1:])]
    return out


def int_between(lo: int, hi: int) -> str:
    """A regular expression for the JSON integers lo..hi (0 <= lo <= hi < 10**6)."""
    if not 0 <= lo <= hi < 10**6:
        raise Unsupported("integer bounds")
    alts: list[str] = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (digits - 1) if digits > 1 else 0), min(hi, 10**digits - 1)
        if a <= b:
            alts += _same_length(str(a), str(b))
    return "(?:" + "|".join(alts) + ")"


def _literal(value: Any) -> str:
    """An enum or const value as it appears in a compact line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and _LITERAL.fullmatch(value) and value.isascii():
        return '"' + re.escape(value) + '"'
    raise Unsupported("enum value")


def value_pattern(schema: Any, name: str) -> str:
    """The expression for one property's value; Unsupported for a rule it cannot mirror."""
    if not isinstance(schema, dict):
        raise Unsupported(name)
    rules = {k: v for k, v in schema.items() if k not in INERT}
    kind = rules.get("type")
    if kind == "string":
        return '"' + string_pattern(schema, name) + '"'
    rules.pop("type", None)
    if kind == "boolean" and set(rules) == {"enum"} and rules["enum"] and \
            all(type(v) is bool for v in rules["enum"]):
        return "(?:" + "|".join(_literal(v) for v in rules["enum"]) + ")"
    if kind == "boolean" and not rules:
        return "(?:true|false)"
    if kind == "integer" and set(rules) == {"minimum", "maximum"}:
        lo, hi = rules["minimum"], rules["maximum"]
        if type(lo) is not int or type(hi) is not int:
            raise Unsupported(name)
        return int_between(lo, hi)
    raise Unsupported(name)


def string_pattern(schema: Schema, name: str) -> str:
    """What may stand between the quotes of a string property (plain ASCII, no escapes)."""
    rules = {k: v for k, v in schema.items() if k not in INERT and k != "type"}
    if not rules:
        return f"{PLAIN}*"
    if set(rules) == {"enum"} and rules["enum"] and all(type(v) is str for v in rules["enum"]):
        return "(?:" + "|".join(_literal(v)[1:-1] for v in rules["enum"]) + ")"
    if set(rules) == {"format"} and rules["format"] == "date-time":
        return f"(?P<ts_{name}>{TIMESTAMP})"
    if set(rules) == {"pattern"}:
        simple = _SIMPLE_PATTERN.fullmatch(rules["pattern"])
        # one quantifier of variable length at most: two side by side backtrack polynomially
        if simple is not None and len(_VARIABLE.findall(simple.group(1))) <= 1:
            return simple.group(1)
    raise Unsupported(name)


def object_pattern(schema: Schema, fixed: dict[str, str] | None = None) -> str:
    """Every property, in the schema's order, compact; `fixed` overrides some values."""
    rules = {k: v for k, v in schema.items() if k not in INERT}
    props = rules.pop("properties", None)
    if rules.pop("type", None) != "object" or not isinstance(props, dict) or not props:
        raise Unsupported("object")
    required = rules.pop("required", [])
    rules.pop("additionalProperties", None)          # never more keys than `props` in a match
    cond = (rules.pop("if"), rules.pop("then")) if "if" in rules and "then" in rules else None
    if rules or not set(required) <= set(props):
        raise Unsupported("object keywords")
    values = {n: (fixed or {}).get(n) or value_pattern(s, n) for n, s in props.items()}
    if cond is None:
        return _joined(values)
    key, when, then_key, then = _if_then(*cond, props)
    other = [v for v in (True, False) if v != when]
    if values[key] != "(?:true|false)":
        raise Unsupported("if")
    return "(?:" + _joined({**values, key: _literal(when), then_key: _literal(then)}) + "|" + \
        _joined({**values, key: _literal(other[0])}) + ")"


def _joined(values: dict[str, str]) -> str:
    return r"\{" + ",".join(f'"{re.escape(n)}":{v}' for n, v in values.items()) + r"\}"


def _if_then(cond: Any, then: Any, props: dict[str, Any]) -> tuple[str, bool, str, Any]:
    """The one conditional shape mirrored: if boolean A is const X then B is const Y."""
    try:
        (key, test), = cond["properties"].items()
        (then_key, rule), = then["properties"].items()
        if set(cond) != {"properties", "required"} or cond["required"] != [key] \
                or set(then) != {"properties"}:
            raise Unsupported("if")
        when, value = test["const"], rule["const"]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unsupported("if") from None
    if set(test) != {"const"} or set(rule) != {"const"} or type(when) is not bool or then_key not in props:
        raise Unsupported("if")
    _literal(value)
    return key, when, then_key, value


def line_pattern(envelope: Schema, payloads: Mapping[str, Schema], sources: list[str]) -> str | None:
    """The expression for whole event lines of `sources`; None if none can be mirrored. Groups:
    event_id, timestamp (ts_timestamp), region, source."""
    mirrored = {}
    for source in sources:
        try:
            mirrored[source] = object_pattern(payloads[source])
        except Unsupported:
            continue
    if not mirrored or not all(_LITERAL.fullmatch(s) and s.isascii() for s in mirrored):
        return None
    props = envelope.get("properties", {})
    # the envelope's own rules for the fields the expression replaces must say no more than it does
    if _rules(props.get("source")) != {"type": "string"} \
            or _rules(props.get("payload")) != {"type": "object"}:
        return None
    names = list(mirrored)
    choose = "(?P<source>" + "|".join(f"(?P<s{i}>{re.escape(s)})" for i, s in enumerate(names)) + ")"
    payload = "".join(f"(?(s{i}){mirrored[s]}|" for i, s in enumerate(names[:-1]))
    payload += mirrored[names[-1]] + ")" * (len(names) - 1)
    try:
        if props["event_id"].get("type") != "string" or props["region"].get("type") != "string":
            return None
        event_id = string_pattern(props["event_id"], "event_id")
        region = string_pattern(props["region"], "region")
        return object_pattern(envelope, {"event_id": f'"(?P<event_id>{event_id})"',
                                         "region": f'"(?P<region>{region})"',
                                         "source": f'"{choose}"', "payload": payload})
    except (Unsupported, KeyError):
        return None


def _rules(schema: Any) -> dict[str, Any] | None:
    return {k: v for k, v in schema.items() if k not in INERT} if isinstance(schema, dict) else None


def _compiled(envelope: Schema, payloads: Mapping[str, Schema], sources: list[str]) -> str | None:
    text = line_pattern(envelope, payloads, sources)
    if text is None or text.count("(?P<ts_") != 1 or "(?P<ts_timestamp>" not in text:
        return None
    return text


def _for_pack(pack: Pack) -> str | None:
    return _compiled(pack.envelope, pack.payloads, sorted(pack.payloads))


def line_matcher(pack: Pack) -> Callable[[bytes], re.Match[bytes] | None] | None:
    """`fullmatch` over raw lines: a match is a valid event once `is_instant` accepts its
    `ts_timestamp` group (validate's fast path)."""
    text = _for_pack(pack) if pack.roles.is_default else None
    return None if text is None else re.compile(text.encode()).fullmatch


UUID_SHAPE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def field_reader(pack: Pack) -> re.Pattern[str] | None:
    """The expression over decoded lines, for aggregate and audit: a full match is an event with
    no duplicate key whose `event_id`, `ts_timestamp`, `region` and `source` groups are its
    fields."""
    text = _for_pack(pack) if pack.roles.is_default else None
    return None if text is None else re.compile(text)


def ids_are_uuids(reader: re.Pattern[str] | None) -> bool:
    """True when every `event_id` the reader matches is UUID-shaped (hex digits in 8-4-4-4-12)."""
    return reader is not None and f'"event_id":"(?P<event_id>{UUID_SHAPE})"' in reader.pattern
