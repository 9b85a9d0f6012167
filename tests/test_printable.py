"""What a record says reaches a terminal as text: its escape sequences are shown, never obeyed."""

from __future__ import annotations

import orjson

from evtool.core.printable import printable
from tests.conftest import run

CLEAR, TITLE, CLIPBOARD = "\x1b[2J", "\x1b]0;owned\x07", "\x1b]52;c;SGVsbG8=\x07"


def test_control_characters_are_written_as_escapes() -> None:
    assert printable(f"north{CLEAR}") == "north\\x1b[2J"
    assert printable(CLIPBOARD) == "\\x1b]52;c;SGVsbG8=\\x07"
    assert printable("a\u202eb\x9bc\nd") == "a\\u202eb\\x9bc\\x0ad"
    assert printable("plain · región") == "plain · región"


def test_watch_never_passes_an_escape_sequence_on() -> None:
    by = {f"r{CLEAR}": {f"s{TITLE}": 3}, CLIPBOARD: {"s": 1}}
    window = {"kind": "window", "window_start": "2026-11-26T00:00:00Z",
              "window_end": "2026-11-26T00:00:05Z", "total": 4, "by_source": {f"s{TITLE}": 3, "s": 1},
              "by_region": {k: sum(v.values()) for k, v in by.items()}, "by_region_source": by,
              "event_ids": ["a", "b", "c", "d"]}
    result = run(["watch", "--once"], stdin=orjson.dumps(window) + b"\n")
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout + result.stderr and b"\x07" not in result.stdout
    assert b"r\\x1b[2J" in result.stdout                     # shown, so a reader sees what came
