"""Values drawn and objects built by straight-line code compiled once per schema: gen's makers,
each able to say itself as an expression, and the builders that inline them."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import orjson

from evtool.core.regexgen import Number

Make = Callable[[], Any]
OPTIONAL_P = 0.5


def draw(low: int, span: int) -> str:
    """The expression of an integer in [low, low + span): no addition when it starts at 0."""
    return f"int(rand() * {span})" if low == 0 else f"{low} + int(rand() * {span})"


class Const:
    """A fixed scalar."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value

    def expr(self, var: str) -> str:
        return var

    def bound(self) -> Any:
        return self.value


class Choice:
    """One of a list of scalars."""

    def __init__(self, options: list[Any], rand: Callable[[], float]) -> None:
        self.options, self.n, self.rand = options, len(options), rand

    def __call__(self) -> Any:
        return self.options[int(self.rand() * self.n)]

    def expr(self, var: str) -> str:
        return f"{var}[int(rand() * {self.n})]"

    def bound(self) -> Any:
        return self.options


class IntRange:
    """An integer in [low, low + span)."""

    def __init__(self, low: int, span: int, rand: Callable[[], float]) -> None:
        self.low, self.span, self.rand = low, span, rand

    def __call__(self) -> int:
        return self.low + int(self.rand() * self.span)

    def expr(self, var: str) -> str:
        return f"({draw(self.low, self.span)})"

    def bound(self) -> Any:
        return None


class Grid:
    """A number on the grid of 1 / `scale` from first / scale, `span` steps: the double nearest the
    step (k / scale is correctly rounded, as round(x, places) is), which repr writes as orjson does
    while it is below 1e15 with at most 4 places."""

    def __init__(self, first: int, span: int, scale: int, rand: Callable[[], float]) -> None:
        self.first, self.span, self.scale, self.rand = first, span, scale, rand

    def __call__(self) -> float:
        return (self.first + int(self.rand() * self.span)) / self.scale

    def expr(self, var: str) -> str:
        return f"(({draw(self.first, self.span)}) / {self.scale})"

    def bound(self) -> Any:
        return None

    def text(self, var: str) -> str:
        """The same draw as a line plan's f-string writes it: what repr writes, from the integer
        and a table of fractions (`var`, `fractions(scale)`), a third cheaper than repr. Up to
        15 digits a decimal is the shortest text that reads back as its double; beyond, repr."""
        if max(abs(self.first), abs(self.first + self.span - 1)) >= 10 ** 15:
            return f"{{{self.expr(var)}!r}}"
        step, tail = draw(self.first, self.span), f"{{{var}[n_ % {self.scale}]}}"
        if self.first >= 0:             # no sign to write
            return f"{{(n_ := {step}) // {self.scale}}}{tail}"
        return f'{{"-" if (n_ := {step}) < 0 else ""}}{{(n_ := abs(n_)) // {self.scale}}}{tail}'


@functools.cache
def fractions(scale: int) -> tuple[str, ...]:
    """The text after the integer part of k / scale, as repr writes it, for k in [0, scale)."""
    places = len(str(scale)) - 1
    return (".0", *(f".{k:0{places}d}".rstrip("0") for k in range(1, scale)))


class Coin:
    """True or False, evenly."""

    def __init__(self, rand: Callable[[], float]) -> None:
        self.rand = rand

    def __call__(self) -> bool:
        return self.rand() < 0.5

    def expr(self, var: str) -> str:
        return "(rand() < 0.5)"

    def bound(self) -> Any:
        return None


class Uuid4:
    """A version-4-shaped UUID from a seeded generator's bits (uuid4() would break
    reproducibility): the bytes randbytes(16) would draw, its version and variant bits set."""

    KEEP = ~((0xF0 << 48) | (0xC0 << 64))     # in the integer whose little-endian bytes are the UUID
    SET = (0x40 << 48) | (0x80 << 64)

    def __init__(self, getrandbits: Callable[[int], int]) -> None:
        self.getrandbits = getrandbits

    def __call__(self) -> str:
        b = ((self.getrandbits(128) & self.KEEP) | self.SET).to_bytes(16, "little")
        return f"{b[:10].hex('-', 2).replace('-', '', 1)}-{b[10:].hex()}"

    def text(self, var: str) -> str:
        """The same draw and text as a call, as the inside of a line plan's f-string (no call)."""
        return (f'{{(u_ := (({var}(128) & {self.KEEP}) | {self.SET}).to_bytes(16, "little"))[:10]'
                f'.hex("-", 2).replace("-", "", 1)}}-{{u_[10:].hex()}}')


Inline = (Const, Choice, IntRange, Grid, Coin)


def dict_builder(fields: list[tuple[str, Make, bool]], rand: Callable[[], float]) -> Make:
    """One straight-line function that builds the object: no loop, scalar draws inlined.

    Optional fields are kept in order, each present with probability OPTIONAL_P.
    """
    ns: dict[str, Any] = {"rand": rand}
    body, literal = [], True
    head: list[str] = []
    for i, (name, make, required) in enumerate(fields):
        var = f"m{i}"
        if isinstance(make, Inline):
            ns[var] = make.bound()
            value = make.expr(var)
        else:
            ns[var] = make
            value = f"{var}()"
        if literal and required:
            head.append(f"{name!r}: {value}")
            continue
        literal = False
        line = f"    d[{name!r}] = {value}"
        body.append(line if required else f"    if rand() < {OPTIONAL_P}:\n    {line}")
    source = "def build():\n    d = {" + ", ".join(head) + "}\n" + "\n".join(body) + "\n    return d\n"
    exec(compile(source, "<evtool plan>", "exec"), ns)
    built: Make = ns["build"]
    return built


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# a line plan's f-string in parts: code, or text that is evtool's own punctuation (OURS) or
# came from the pack (bound as a variable, never code)
Part = tuple[str, str]
CODE, OURS, PACKS = "code", "ours", "pack's"
_PLANS = itertools.count()
QUOTE = (OURS, '"')


# if boolean field A (a coin) is X, field B (drawn all the same) is written as the constant Y
When = tuple[str, bool, str, Any]


def line_builder(fields: list[tuple[str, Make, bool]], rand: Callable[[], float],
                 safe: Callable[[Make], bool], time: tuple[str, bool] | None = None,
                 when: When | None = None) -> Callable[..., str]:
    """The same object as `dict_builder` makes from the same draws, written straight as compact
    JSON text (what orjson.dumps would write), without building the dict. `safe` says which
    makers return strings that need no escaping (ids and timestamps gen makes itself). Keys and
    constants are bound as variables, so nothing from a pack is ever part of the code. With
    `time` (a field's name, and whether its value is a string), that field's value is the plan's
    argument rather than its maker's: a caller writing many lines makes instants cheaper. With
    `when`, the object's one if/then (see `When`) is written as its builder applies it."""
    ns: dict[str, Any] = {"rand": rand, "_json": _json_text, "T": "true", "F": "false"}
    plan = f"p{next(_PLANS)}_"         # a prefix of its own: a plan's parts may join another's
    members: list[tuple[list[Part], bool]] = []
    for i, (name, make, required) in enumerate(fields):
        var = f"{plan}m{i}"
        value: list[Part]
        if time is not None and name == time[0]:
            value = [QUOTE, (CODE, "{t_}"), QUOTE] if time[1] else [(CODE, "{t_}")]
        elif isinstance(make, Const):
            value = [(PACKS, _json_text(make.value))]
        elif isinstance(make, Choice):
            ns[var] = [_json_text(option) for option in make.options]
            value = [(CODE, f"{{{var}[int(rand() * {make.n})]}}")]
        elif isinstance(make, IntRange):
            value = [(CODE, f"{{{draw(make.low, make.span)}}}")]
        elif isinstance(make, Coin):
            value = [(CODE, "{T if rand() < 0.5 else F}")]
        elif isinstance(make, Grid):
            ns[var] = fractions(make.scale)
            value = [(CODE, make.text(var))]
        elif isinstance(make, Uuid4):
            ns[var] = make.getrandbits
            value = [QUOTE, (CODE, make.text(var)), QUOTE]
        elif (drawn := _drawn_text(make, rand)) is not None:
            value = [QUOTE, *drawn, QUOTE]
        elif (nested := getattr(make, "line", None)) is not None:  # a nested object writing itself
            inner = getattr(nested, "parts", None)
            if inner is not None and nested.ns["rand"] == rand:     # its f-string joins this one
                ns.update(nested.ns)
                value = list(inner)
            else:
                ns[var] = nested
                value = [(CODE, f"{{{var}()}}")]
        elif getattr(make, "repr_is_json", False):
            ns[var] = make
            value = [(CODE, f"{{{var}()!r}}")]
        elif safe(make) or getattr(make, "plain", False):
            ns[var] = make
            value = [QUOTE, (CODE, f"{{{var}()}}"), QUOTE]
        else:
            ns[var] = make
            value = [(CODE, f"{{_json({var}())}}")]
        if when is not None:
            value = _conditional(name, value, when, plan, ns)
        members.append(([(PACKS, _json_text(name) + ":"), *value], required))
    if all(required for _, required in members):
        parts: list[Part] = [(OURS, "{")]
        for j, (member, _) in enumerate(members):
            parts += [(OURS, ","), *member] if j else member
        parts.append((OURS, "}"))
        body = f"    return f'{_fstring(parts, plan, ns)}'\n"
    else:
        body = "    p = []\n" + "".join(
            f"    p.append(f'{_fstring(m, plan, ns)}')\n" if required
            else f"    if rand() < {OPTIONAL_P}:\n        p.append(f'{_fstring(m, plan, ns)}')\n"
            for m, required in members)
        body += "    return '{' + ','.join(p) + '}'\n"
    signature = "def line(t_):\n" if time is not None else "def line():\n"
    exec(compile(signature + body, "<evtool line plan>", "exec"), ns)
    built: Callable[..., str] = ns["line"]
    if all(required for _, required in members) and time is None:
        built.parts, built.ns = parts, ns  # type: ignore[attr-defined]
    return built


def _conditional(name: str, value: list[Part], when: When, plan: str, ns: dict[str, Any]) -> list[Part]:
    """A's draw kept (A is a coin), and B's text the constant when A is X: B is drawn all the
    same, as the object's builder draws it before its `then` replaces it (`object` checks that
    B is written by one replacement field)."""
    key, want, then_key, then = when
    if name == key:
        return [(CODE, f"{{T if ({plan}a := rand() < 0.5) else F}}")]
    if name != then_key:
        return value
    (_, code), = value
    ns[f"{plan}y"] = _json_text(then)
    return [(CODE, f"{{{plan}y if (({plan}b := {code[1:-1]}) or True) and {plan}a is {want!r} "
                   f"else {plan}b}}")]


def _drawn_text(make: Make, rand: Callable[[], float]) -> list[Part] | None:
    """A pattern's string (regexgen) of text and numbers drawn from the plan's own `rand`, as
    parts of the line: the same draws as a call, without the calls."""
    if not getattr(make, "plain", False):
        return None
    parts = [make] if isinstance(make, Number) else getattr(make, "inline", None)
    if parts is None or not all(isinstance(p, str) or p.rand == rand for p in parts):
        return None
    return [(PACKS, p) if isinstance(p, str) else
            (CODE, f"{{{draw(p.low, p.span)}{':' + p.spec if p.spec else ''}}}") for p in parts]


def _fstring(parts: list[Part], plan: str, ns: dict[str, Any]) -> str:
    """The inside of an f-string writing `parts`: each run of text one variable (a third fewer
    steps per line than a variable per key and constant), or literal when it is all ours."""
    out: list[str] = []
    run: list[Part] = []
    for part in [*parts, (CODE, "")]:
        if part[0] != CODE:
            run.append(part)
            continue
        if run:
            text = "".join(t for _, t in run)
            if all(kind == OURS for kind, _ in run):
                out.append(text.replace("{", "{{").replace("}", "}}"))
            else:
                var = f"{plan}c{sum(name.startswith(plan + 'c') for name in ns)}"
                ns[var] = text
                out.append(f"{{{var}}}")
            run.clear()
        out.append(part[1])
    return "".join(out)
