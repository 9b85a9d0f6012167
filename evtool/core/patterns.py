"""Pack patterns run by RE2: time linear in the value whatever the pattern, so no value can hang
a stage (Python's `re` backtracks: `^(a+)+$` against 41 characters takes minutes)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

import re2

from evtool.core.pack import PackError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
# ECMA-262 (JSON Schema's dialect) writes a code point \u00e9; RE2 writes \x{00e9}
_ECMA_U = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})")


class Searcher(Protocol):
    def search(self, text: str) -> Any: ...


@lru_cache(maxsize=1024)
def linear(pattern: str) -> Searcher:
    """`pattern` compiled by RE2; a PackError naming it when RE2 cannot run it (backreferences,
    lookaround: the constructs that need backtracking)."""
    try:
        compiled: Searcher = re2.compile(_ECMA_U.sub(r"\1\\x{\2}", pattern), _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise PackError(f"pattern {pattern!r}: {why} (evtool runs pack patterns with RE2, in time "
                        "linear in the value: no backreferences, no lookaround)") from None
    return compiled
