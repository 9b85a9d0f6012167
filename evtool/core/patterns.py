"""Pack patterns in time linear in the value, so no value can hang a stage (Python's `re`
backtracks: `^(a+)+$` against 41 characters takes minutes).

A pattern `re` runs without backtracking much (see `backtracks_little`) runs on `re`, about 18
times faster per call than the RE2 binding; any other runs on RE2. Either way `\\d` and `\\w`
are ASCII and `$` is the end of the value, as ECMA-262 (JSON Schema's dialect) reads them. A
pattern RE2 cannot run (backreferences, lookaround) is refused, whichever engine would run it.
"""

from __future__ import annotations

import importlib
import re
import sys
from functools import lru_cache
from typing import Any, Protocol

import re2

from evtool.core.pack import PackError

# the standard parser of regular expressions: re._parser, which typeshed no longer lists, or
# Python 3.10's sre_parse
_parser: Any = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
# ECMA-262 writes a code point \u00e9; RE2 writes \x{00e9}
_ECMA_U = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})")
_DOLLAR = re.compile(r"(?<!\\)\$")
_ATOMS = {"LITERAL", "NOT_LITERAL", "IN", "ANY", "CATEGORY"}
BOUNDED = 64            # how many ways bounded quantifiers may split a value between them


class Searcher(Protocol):
    def search(self, text: str) -> Any: ...


@lru_cache(maxsize=1024)
def linear(pattern: str) -> Searcher:
    """`pattern` compiled to run in linear time; a PackError naming it when RE2 cannot run it."""
    try:
        safe: Searcher = re2.compile(_ECMA_U.sub(r"\1\\x{\2}", pattern), _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PackError(f"pattern {pattern!r}: {why} (evtool runs pack patterns in time linear "
                        "in the value, with RE2's rules: no backreferences, no lookaround)") from None
    if backtracks_little(pattern):
        try:
            return re.compile(_DOLLAR.sub(r"\\Z", pattern), re.ASCII)
        except re.error:
            pass
    return safe


def backtracks_little(pattern: str) -> bool:
    """True when `re` matches `pattern` in time linear in the value: anchored at the start, one
    unbounded quantifier at most (over a single character, inside no other quantifier), and
    bounded ones that can split a value in no more than BOUNDED ways between them."""
    try:
        tree = list(_parser.parse(pattern))
    except Exception:
        return False
    if not tree or (str(tree[0][0]), str(tree[0][1])) != ("AT", "AT_BEGINNING"):
        return False
    unbounded = 0

    def ways(nodes: Any, repeated: bool) -> int | None:
        """How many ways the nodes may match one stretch of text; None: too many, or unknown."""
        nonlocal unbounded
        total = 1
        for op, arg in nodes:
            name = str(op)
            if name in _ATOMS or name == "AT":
                continue
            if name in ("MAX_REPEAT", "MIN_REPEAT"):
                low, high, inner = arg
                if high == _parser.MAXREPEAT:
                    unbounded += 1
                    if repeated or unbounded > 1 or len(inner) != 1 or str(inner[0][0]) not in _ATOMS:
                        return None
                    continue
                each = ways(inner, True)
                if each is None or (each > 1 and high > BOUNDED.bit_length()):
                    return None
                total *= (high - low + 1) * each ** high
            elif name == "SUBPATTERN":
                each = ways(arg[-1], repeated)
                if each is None:
                    return None
                total *= each
            elif name == "BRANCH" and not repeated:
                branches = [ways(branch, repeated) for branch in arg[1]]
                if None in branches:
                    return None
                total *= sum(b for b in branches if b is not None)
            else:
                return None
            if total > BOUNDED:
                return None
        return total

    return ways(tree, False) is not None
