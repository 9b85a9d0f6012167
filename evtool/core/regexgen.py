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

    def pick(self, options: list[str]) -> Make:
        rand, n = self.random, len(options)
        if n == 1:
            only = options[0]
            return lambda: only
        return lambda: options[int(rand() * n)]

    def sequence(self, nodes: Any) -> Make:
        parts: list[Make] = []
        run = ""                                   # literal characters in a row: one string
        for op, av in nodes:
            if op is sre_c.LITERAL:
                run += chr(av)
                continue
            if run:
                parts.append(self.constant(run))
                run = ""
            made = self.node(op, av)
            if made is not None:
                parts.append(made)
        if run:
            parts.append(self.constant(run))
        if not parts:
            return lambda: ""
        if len(parts) == 1:
            return parts[0]
        return lambda: "".join([p() for p in parts])

    @staticmethod
    def constant(text: str) -> Make:
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

    def digits(self, n: int) -> Make:
        """A run of n digits as one formatted number: one random draw, not n."""
        rand, top, fmt = self.random, 10 ** n, f"0{n}d"
        return lambda: format(int(rand() * top), fmt)


def regex_generator(pattern: str, rng: random.Random) -> Make:
    """A function returning strings that `re.search(pattern, s)` matches."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise Unsupported(f"not a valid regular expression ({exc})") from None
    return _Builder(rng).sequence(list(tree))
