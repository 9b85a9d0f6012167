"""Strings that match a regular expression, from a generator built once per pattern.

rstr and exrex re-parse the pattern on every call (35 µs a string here); this parses it once with
Python's own parser into closures, and turns a fixed run of digits into one formatted number.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from typing import Any

try:  # Python >= 3.11
    import re._constants as sre_c  # type: ignore[import-not-found,unused-ignore]
    import re._parser as sre_parse  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as sre_c  # type: ignore[no-redef,unused-ignore]
    import sre_parse  # type: ignore[no-redef,unused-ignore]

Make = Callable[[], str]
UNBOUNDED_EXTRA = 4
_PRINTABLE = [chr(c) for c in range(32, 127)]
_CATEGORIES: dict[Any, str] = {
    sre_c.CATEGORY_DIGIT: string.digits,
    sre_c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_c.CATEGORY_SPACE: " ",
}
_NOT_CATEGORIES: dict[Any, Any] = {
    sre_c.CATEGORY_NOT_DIGIT: sre_c.CATEGORY_DIGIT,
    sre_c.CATEGORY_NOT_WORD: sre_c.CATEGORY_WORD,
    sre_c.CATEGORY_NOT_SPACE: sre_c.CATEGORY_SPACE,
}


class Unsupported(ValueError):
    """A construct (look-around, back-reference) this generator does not produce."""


def _category(cat: Any) -> set[str]:
    if cat in _CATEGORIES:
        return set(_CATEGORIES[cat])
    if cat in _NOT_CATEGORIES:
        return set(_PRINTABLE) - set(_CATEGORIES[_NOT_CATEGORIES[cat]])
    raise Unsupported(f"character class {cat}")


def _charset(items: list[tuple[Any, Any]]) -> list[str]:
    chars: set[str] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            chars.add(chr(av))
        elif op is sre_c.RANGE:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is sre_c.CATEGORY:
            chars |= _category(av)
        else:
            raise Unsupported(f"{op} in a character set")
    if negate:
        chars = set(_PRINTABLE) - chars
    if not chars:
        raise Unsupported("an empty character set")
    return sorted(chars)


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random
        self.chars: set[str] = set()              # every character a made string may hold

    def pick(self, options: list[str]) -> Make:
        self.chars.update(options)
        rand, n = self.random, len(options)
        if n == 1:
            only = options[0]
            return lambda: only
        return lambda: options[int(rand() * n)]

    def sequence(self, nodes: Any) -> Make:
        """One generated function joining the parts in an f-string (a join over a list of
        calls cost twice as much); literal runs are one string, bound as a variable."""
        parts: list[str | Make] = []
        nodes = list(nodes)
        at = 0
        while at < len(nodes):
            op, av = nodes[at]
            at += 1
            lead = _leading_digit(op, av, nodes[at] if at < len(nodes) else None)
            if lead is not None:                      # [1-9][0-9]{n}: one number, one draw
                parts.append(self.number(*lead))
                at += 1
                continue
            if op is sre_c.LITERAL:
                char = chr(av)
                self.chars.add(char)
                if parts and isinstance(parts[-1], str):
                    parts[-1] += char
                else:
                    parts.append(char)
                continue
            made = self.node(op, av)
            if made is not None:
                parts.append(made)
        if not parts:
            return lambda: ""
        if len(parts) == 1:
            only = parts[0]
            return only if not isinstance(only, str) else self.constant(only)
        ns: dict[str, Any] = {}
        fields = []
        for i, part in enumerate(parts):
            ns[f"p{i}"] = part
            fields.append(f"{{p{i}}}" if isinstance(part, str) else f"{{p{i}()}}")
        exec(compile(f"def seq():\n    return f'{''.join(fields)}'\n", "<evtool pattern>", "exec"), ns)
        made_seq: Make = ns["seq"]
        if all(isinstance(part, (str, Number)) for part in parts):
            setattr(made_seq, "inline", parts)  # noqa: B010
        return made_seq

    def constant(self, text: str) -> Make:
        self.chars.update(text)
        return lambda: text

    def node(self, op: Any, av: Any) -> Make | None:
        if op is sre_c.LITERAL:
            char = chr(av)
            return lambda: char
        if op is sre_c.NOT_LITERAL:
            return self.pick([c for c in _PRINTABLE if c != chr(av)])
        if op is sre_c.ANY:
            return self.pick(list(string.ascii_letters + string.digits))
        if op is sre_c.IN:
            return self.pick(_charset(av))
        if op is sre_c.CATEGORY:
            return self.pick(sorted(_category(av)))
        if op is sre_c.AT:
            return None
        if op is sre_c.SUBPATTERN:
            return self.sequence(av[-1])
        if op is sre_c.BRANCH:
            alternatives = [self.sequence(alt) for alt in av[1]]
            rand, n = self.random, len(alternatives)
            return lambda: alternatives[int(rand() * n)]()
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            return self.repeat(*av)
        raise Unsupported(f"{str(op).lower()}")

    def repeat(self, low: int, high: Any, sub: Any) -> Make:
        if high is sre_c.MAXREPEAT or high > low + UNBOUNDED_EXTRA:
            high = low + UNBOUNDED_EXTRA
        if low == high and len(sub) == 1 and sub[0][0] is sre_c.IN and _charset(sub[0][1]) == list(
                string.digits):
            return self.digits(low)
        one = self.sequence(sub)
        rand, span = self.random, high - low + 1
        if low == high:
            return lambda: "".join([one() for _ in range(low)])
        return lambda: "".join([one() for _ in range(low + int(rand() * span))])

    def number(self, first: int, last: int, n: int) -> Make:
        """A digit of first..last then n digits: the numbers first*10^n .. (last+1)*10^n - 1,
        each as likely as drawing the digits one by one."""
        self.chars.update(string.digits)
        return Number(self.random, first * 10**n, (last - first + 1) * 10**n, "")

    def digits(self, n: int) -> Make:
        """A run of n digits as one formatted number: one random draw, not n."""
        self.chars.update(string.digits)
        return Number(self.random, 0, 10**n, f"0{n}d")


class Number:
    """An integer of [low, low + span) written in `spec` (a format spec), from one draw."""

    def __init__(self, rand: Callable[[], float], low: int, span: int, spec: str) -> None:
        self.rand, self.low, self.span, self.spec = rand, low, span, spec

    def __call__(self) -> str:
        return format(self.low + int(self.rand() * self.span), self.spec)


def _leading_digit(op: Any, av: Any, after: Any) -> tuple[int, int, int] | None:
    """(first, last, n) for a class of digits first..last (first >= 1) then [0-9]{n}."""
    if op is not sre_c.IN or after is None or after[0] is not sre_c.MAX_REPEAT:
        return None
    low, high, sub = after[1]
    if low != high or len(sub) != 1 or sub[0][0] is not sre_c.IN or _charset(sub[0][1]) != list(
            string.digits):
        return None
    chars = _charset(av)
    if not chars or not all(c.isdigit() for c in chars) or chars[0] == "0" or \
            [int(c) for c in chars] != list(range(int(chars[0]), int(chars[-1]) + 1)):
        return None
    return int(chars[0]), int(chars[-1]), low


def regex_generator(pattern: str, rng: random.Random) -> Make:
    """A function returning strings that `re.search(pattern, s)` matches."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise Unsupported(f"not a valid regular expression ({exc})") from None
    builder = _Builder(rng)
    made = builder.sequence(list(tree))
    return plain_text(made) if all(c in PLAIN_CHARS for c in builder.chars) else made


# characters JSON writes as they are: what a string made only of them needs no escaping for
PLAIN_CHARS = frozenset(chr(c) for c in range(0x20, 0x7f)) - {'"', "\\"}


def plain_text(make: Make) -> Make:
    """`make`, marked as making strings JSON writes as they are (gen writes them unescaped)."""
    setattr(make, "plain", True)  # noqa: B010
    return make
