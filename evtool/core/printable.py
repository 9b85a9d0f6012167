"""Text from records made safe for a terminal: control characters shown, never obeyed."""

from __future__ import annotations

import re
from typing import Any

import orjson

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a reader sees
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _shown(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`), so an escape
    sequence in a region name cannot clear the screen, retitle it or fill the clipboard."""
    return _CONTROL.sub(_shown, text) if _CONTROL.search(text) else text


def printable_tree(value: Any) -> Any:
    """A JSON-like value with `printable` applied to every string in it, keys included."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(k): printable_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable_tree(v) for v in value]
    return value


def shortened(value: Any, width: int = 60) -> str:
    """A value as JSON text for a message (repr for what JSON cannot say), cut to `width`."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."
