"""Whole-line acceptance without parsing, generated from a pack's schemas.

A line laid out as gen and orjson write an event (the schema's key order, plain ASCII strings,
small integers, no spaces) is matched by one regular expression built from the envelope and
payload schemas. A match is certainly a valid event with no duplicate key, so validate passes it
and aggregate reads its four fields from the match, neither parsing it. Anything the builder does
not understand gives no expression for that source; anything that does not match takes the
parsing path, which decides and explains. Date-times and the common number bounds are decided by
the expression itself: a check in Python on each match cost more than the match.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from evtool.core.checks import predicate
from evtool.core.pack import Pack
from evtool.core.patterns import linear

Schema = dict[str, Any]

# Keywords that only describe or steer generation: they never change a verdict.
INERT = {"$schema", "$id", "title", "description", "examples", "x-generate", "$comment"}
PLAIN = r'[\x20\x21\x23-\x5b\x5d-\x7e]'        # a JSON string character needing no escape, ASCII
# The `date-time` rule of instant.is_instant, exactly, for the years 0002-9998 and no leap second
# (those take the parsing path): real days of real months, February 29 in leap years only.
_MONTH_DAY = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
TIMESTAMP = (rf"(?!000[01]|9999)(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)[Tt ]"
             r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
             r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
# a simple pattern's atoms: a class of these characters, one of them, or a dot
_ATOM_TEXT = r"\[[A-Za-z0-9:_/@-]+\]|[A-Za-z0-9:_/@-]|\\\."
_SIMPLE_PATTERN = re.compile(rf"\^((?:(?:{_ATOM_TEXT})(?:\{{\d+(?:,\d+)?\}}|[+*?])?)+)\$")
_VARIABLE = re.compile(r"[+*?]|\{\d+,\d*\}")
_ATOM = re.compile(rf"({_ATOM_TEXT})(?:\{{(\d+)\}}|(\{{[0-9,]*\}}|[+*?]))?")
_ASCII = tuple(map(chr, range(128)))
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
    if type(value) is int and abs(value) < 10**15:
        return str(value)
    if isinstance(value, str) and _LITERAL.fullmatch(value) and value.isascii():
        return '"' + re.escape(value) + '"'
    raise Unsupported("enum value")


# JSON numbers as orjson writes those gen makes: no exponent, ints within 64 bits
UNSIGNED = r"(?:0|[1-9][0-9]{0,17})"
INTEGER = "-?" + UNSIGNED
FRACTION = r"(?:\.[0-9]{1,17})?"
NUMBER = INTEGER + FRACTION
# any JSON scalar a schema with no rule takes (an object or array there takes the parsing path)
SCALAR = f'(?:"{PLAIN}*"|{NUMBER}|true|false|null)'
_BOUNDS = {"minimum": (False, False), "maximum": (True, False), "exclusiveMinimum": (False, True),
           "exclusiveMaximum": (True, True)}


@dataclass
class Shape:
    """What the expression alone cannot say, checked on a match: numbers within their bounds
    (group, integer?, bounds) and date-times (groups `ts_*`) by the schemas' own rule."""

    numbers: list[tuple[str, bool, tuple[tuple[str, float], ...]]] = field(default_factory=list)

    def value(self, schema: Any, name: str) -> str:
        """The expression for one property's value; Unsupported for a rule it cannot mirror."""
        if not isinstance(schema, dict):
            raise Unsupported(name)
        rules = {k: v for k, v in schema.items() if k not in INERT}
        kind = rules.get("type")
        if not rules:
            return SCALAR
        if set(rules) <= {"const", "type"} and "const" in rules:
            return _literal(rules["const"]) if kind in (None, _json_type(rules["const"])) \
                else _refuse(name)
        if kind == "string":
            return '"' + string_pattern(schema, name) + '"'
        rules.pop("type", None)
        if kind == "boolean" and set(rules) == {"enum"} and rules["enum"] and \
                all(type(v) is bool for v in rules["enum"]):
            return "(?:" + "|".join(_literal(v) for v in rules["enum"]) + ")"
        if kind == "boolean" and not rules:
            return "(?:true|false)"
        if kind in ("integer", "number") and set(rules) <= set(_BOUNDS):
            return self.number(kind == "integer", rules, name)
        if kind == "object":
            return self.object({"type": "object", **rules})
        raise Unsupported(name)

    def number(self, integer: bool, rules: dict[str, Any], name: str) -> str:
        if not all(type(v) in (int, float) and math.isfinite(v) for v in rules.values()):
            raise Unsupported(name)
        exact = _bounded(integer, rules)
        if exact is not None:
            return exact
        group = f"n{len(self.numbers)}"
        self.numbers.append((group, integer, tuple(rules.items())))
        return f"(?P<{group}>{INTEGER if integer else NUMBER})"

    def object(self, schema: Schema, fixed: dict[str, str] | None = None,
               forced: frozenset[str] = frozenset()) -> str:
        """Every property a line may hold, in the schema's order, compact; `fixed` overrides some
        values, `forced` are present though the schema leaves them optional."""
        rules = {k: v for k, v in schema.items() if k not in INERT}
        listed = rules.pop("required", [])
        required = set(listed) | set(forced)
        # no properties: the required ones, of any value (a line holds no others in a match)
        props = rules.pop("properties", {name: {} for name in listed})
        if rules.pop("type", None) != "object" or not isinstance(props, dict) or not props:
            raise Unsupported("object")
        rules.pop("additionalProperties", None)          # never more keys than `props` in a match
        names = rules.pop("propertyNames", None)
        if names is not None and not all(_named(n, names) for n in props):
            raise Unsupported("propertyNames")
        forbidden = rules.pop("not", None)
        props = _without_forbidden(props, forbidden, required)
        cond = (rules.pop("if"), rules.pop("then")) if "if" in rules and "then" in rules else None
        if rules or not required <= set(props):
            raise Unsupported("object keywords")
        values = [(n, (fixed or {}).get(n) or self.value(s, n), n in required) for n, s in props.items()]
        if cond is None:
            return _joined(values)
        key, when, then_key, then = if_then(*cond, props)
        if dict((n, v) for n, v, _ in values)[key] != "(?:true|false)" or then_key not in required:
            raise Unsupported("if")
        other = [v for v in (True, False) if v != when]

        def with_(**set_: str) -> list[tuple[str, str, bool]]:
            return [(n, set_.get(n, v), r) for n, v, r in values]
        return "(?:" + _joined(with_(**{key: _literal(when), then_key: _literal(then)})) + "|" + \
            _joined(with_(**{key: _literal(other[0])})) + ")"


def _bounded(integer: bool, rules: dict[str, Any]) -> str | None:
    """The numbers within inclusive whole bounds under 10**6 (or at least 0), as an expression
    that decides alone; None for bounds a match must check (exclusive, fractional, one-sided)."""
    if not rules:
        return INTEGER if integer else NUMBER
    if set(rules) == {"minimum"} and rules["minimum"] == 0:
        return UNSIGNED if integer else UNSIGNED + FRACTION
    if set(rules) != {"minimum", "maximum"}:
        return None
    lo, hi = rules["minimum"], rules["maximum"]
    if lo > hi or not all(float(v).is_integer() and abs(v) < 10**6 for v in (lo, hi)):
        return None
    low, high = int(lo), int(hi)
    if low >= 0:
        return _magnitude(low, high, integer)
    if high <= 0:
        return "-" + _magnitude(-high, -low, integer)
    return f"(?:-{_magnitude(0, -low, integer)}|{_magnitude(0, high, integer)})"


def _magnitude(lo: int, hi: int, integer: bool) -> str:
    """Unsigned numbers from lo to hi: whole parts lo..hi-1 with any fraction, or hi exactly."""
    if integer:
        return int_between(lo, hi)
    exact = f"{hi}(?:\\.0{{1,17}})?"
    return exact if lo == hi else f"(?:{int_between(lo, hi - 1)}{FRACTION}|{exact})"


def _refuse(name: str) -> str:
    raise Unsupported(name)


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", str: "string"}.get(type(value), "other")


def _named(name: str, rule: Any) -> bool:
    """Whether a property name passes `propertyNames` (its common form: a pattern)."""
    if not isinstance(rule, dict) or set(rule) - INERT - {"pattern", "type"}:
        return False
    return "pattern" not in rule or linear(rule["pattern"]).search(name) is not None


def _without_forbidden(props: dict[str, Any], forbidden: Any, required: set[str]) -> dict[str, Any]:
    """`not: {required: [...]}` (never all together): the line form leaves out the last optional
    one of them, so no match holds them all."""
    if forbidden is None:
        return props
    together = forbidden.get("required") if isinstance(forbidden, dict) and set(forbidden) == {
        "required"} else None
    if not isinstance(together, list) or not together:
        raise Unsupported("not")
    if not set(together) <= set(props):
        return props
    dropped = [n for n in together if n not in required]
    if not dropped:
        raise Unsupported("not")
    return {n: s for n, s in props.items() if n != dropped[-1]}


def string_pattern(schema: Schema, name: str) -> str:
    """What may stand between the quotes of a string property (plain ASCII, no escapes)."""
    rules = {k: v for k, v in schema.items() if k not in INERT and k != "type"}
    if not rules:
        return f"{PLAIN}*"
    if set(rules) == {"enum"} and rules["enum"] and all(type(v) is str for v in rules["enum"]):
        return "(?:" + "|".join(_literal(v)[1:-1] for v in rules["enum"]) + ")"
    if set(rules) == {"format"} and rules["format"] == "date-time":
        return f"(?P<ts_{name}>{TIMESTAMP})"
    if set(rules) <= {"minLength", "maxLength"} and all(type(v) is int and 0 <= v < 10**4
                                                        for v in rules.values()):
        return f"{PLAIN}{{{rules.get('minLength', 0)},{rules.get('maxLength', '')}}}"
    if set(rules) == {"pattern"}:
        simple = _SIMPLE_PATTERN.fullmatch(rules["pattern"].replace("\\d", "[0-9]"))
        # one quantifier of variable length at most: two side by side backtrack polynomially
        if simple is not None and len(_VARIABLE.findall(simple.group(1))) <= 1:
            return simple.group(1)
    raise Unsupported(name)


def places(text: str, longest: int = 64) -> tuple[frozenset[str], ...] | None:
    """What each place of every string a simple expression (string_pattern's of a `pattern`)
    matches may hold, when they all have one length up to `longest`; None for any other
    expression. A class's characters are the ASCII ones `re` itself matches with it."""
    out: list[frozenset[str]] = []
    at = 0
    while at < len(text):
        atom = _ATOM.match(text, at)
        if atom is None or atom.group(3) is not None:
            return None
        times = int(atom.group(2) or 1)
        try:
            one = re.compile(atom.group(1)).fullmatch
        except re.error:                        # a range backwards, say
            return None
        if len(out) + times > longest:
            return None
        out += [frozenset(c for c in _ASCII if one(c))] * times
        at = atom.end()
    return tuple(out) if out else None


def _joined(values: list[tuple[str, str, bool]]) -> str:
    """Members in order, the optional ones each present or not; the first must be required."""
    parts: list[str] = []
    for name, value, required in values:
        item = f'"{re.escape(name)}":{value}'
        if not parts:
            if not required:
                raise Unsupported("an optional first property")
            parts.append(item)
        else:
            parts.append("," + item if required else f"(?:,{item})?")
    return r"\{" + "".join(parts) + r"\}"


def if_then(cond: Any, then: Any, props: dict[str, Any]) -> tuple[str, bool, str, Any]:
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


def line_pattern(pack: Pack, shape: Shape) -> str | None:
    """The expression for whole event lines of the pack's sources it can mirror; None if none.
    Groups: event_id, region, source where the roles put them, ts_<field> for each date-time."""
    roles, envelope, payloads = pack.roles, pack.envelope, pack.payloads
    mirrored = {}
    for source in sorted(payloads):
        try:
            mirrored[source] = shape.object(payloads[source])
        except Unsupported:
            continue
    if not mirrored or not all(_LITERAL.fullmatch(s) and s.isascii() for s in mirrored):
        return None
    if not roles.payload:                                 # the payload is the whole event
        return mirrored.get(roles.only_source or "")
    named = roles.top_level()
    if named is None:
        return None
    props = envelope.get("properties", {})
    # the envelope's own rules for the fields the expression replaces must say no more than it does
    source_rule, payload_rule = props.get(named.get("source", "")), props.get(named["payload"])
    source_ok = predicate(source_rule, "source") if isinstance(source_rule, dict) else None
    sources_pass = source_ok is not None and all(source_ok(s) for s in mirrored)
    if ("source" in named and not sources_pass) or _rules(payload_rule) not in ({"type": "object"}, {}):
        return None
    names = list(mirrored)
    if "source" not in named and len(names) > 1:
        return None
    fixed: dict[str, str] = {}
    try:
        for role, group in (("id", "event_id"), ("region", "region")):
            if role in named:
                rule = props.get(named[role])
                if not isinstance(rule, dict) or rule.get("type") != "string":
                    return None
                fixed[named[role]] = f'"(?P<{group}>{string_pattern(rule, named[role])})"'
        if "time" in named and named["time"] not in fixed:
            time = _time_value(props.get(named["time"]), named["time"], shape)
            if time is not None:
                fixed[named["time"]] = time
        fixed[named["payload"]] = "".join(
            f"(?(s{i}){mirrored[s]}|" for i, s in enumerate(names[:-1])) + mirrored[names[-1]] + \
            ")" * (len(names) - 1)
        if "source" in named:
            fixed[named["source"]] = '"(?P<source>' + "|".join(
                f"(?P<s{i}>{re.escape(s)})" for i, s in enumerate(names)) + ')"'
        return shape.object(envelope, fixed, frozenset(fixed))
    except Unsupported:
        return None


def _time_value(rule: Any, name: str, shape: Shape) -> str | None:
    """The time role's value with its text in group `time` (inside the quotes of a string)."""
    kind = rule.get("type") if isinstance(rule, dict) else None
    if kind == "string":
        return f'"(?P<time>{string_pattern(rule, name)})"'
    if kind in ("integer", "number"):
        return f"(?P<time>{shape.value(rule, name)})"
    return None


def _rules(schema: Any) -> dict[str, Any] | None:
    return {k: v for k, v in schema.items() if k not in INERT} if isinstance(schema, dict) else None


def within(value: float, bounds: tuple[tuple[str, float], ...]) -> bool:
    """Whether a number of a match lies within the bounds Shape kept for its group."""
    for key, bound in bounds:
        upper, strict = _BOUNDS[key]
        if (value > bound if upper else value < bound) or (strict and value == bound):
            return False
    return True
