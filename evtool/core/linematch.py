"""validate's whole-line fast path: the pack's expression (lineshape) over raw lines."""

from __future__ import annotations

import re
from collections.abc import Callable

from evtool.core.lineshape import Shape, line_pattern, within
from evtool.core.pack import Pack


def line_matcher(pack: Pack) -> Callable[[bytes], object] | None:
    """True only for a line that parses, with no repeated key, into an event the pack's schemas
    accept; None when its schemas give no expression. With nothing to check on a match it is
    the expression's own fullmatch (no Python call)."""
    shape = Shape()
    text = line_pattern(pack, shape)
    if text is None:
        return None
    try:
        compiled = re.compile(text.encode())
    except re.error:                                     # two date-times of one name, say
        return None
    full = compiled.fullmatch
    numbers = shape.numbers
    if not numbers:
        return full

    def ok(line: bytes) -> bool:
        found = full(line)
        if found is None:
            return False
        for group, integer, bounds in numbers:
            text = found.group(group)
            if text is not None and not within(int(text) if integer else float(text), bounds):
                return False
        return True
    return ok
