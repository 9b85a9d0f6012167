"""watch's live screen: frames at the top of the terminal, other programs' lines in a scroll
region below (as apt keeps its progress line), and `q` read from the terminal itself."""

from __future__ import annotations

import contextlib
import io
import os
import select
import termios
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console, RenderableType

Frame = Callable[[int, int], RenderableType]
# Rows the last frame leaves free below it: watch's own summary (two rows at 80 columns) and
# the shell's prompt.
AFTER_ROWS = 4


def log_rows(height: int) -> int:
    """Rows kept below the frame for the other stages' lines (their summaries, warnings)."""
    return max(6, height // 5) if height >= 20 else max(1, height // 4)


class LiveScreen:
    """Each frame is drawn in place with absolute moves; whatever else reaches the terminal
    scrolls in the rows below, so neither overwrites the other, and the last frame stays."""

    def __init__(self, out: TextIO, frame: Frame, color: bool) -> None:
        self.out = out
        self.frame = frame
        self.color = color
        self.size: tuple[int, int] | None = None

    def _layout(self) -> tuple[int, int, int]:
        columns, lines = os.get_terminal_size(self.out.fileno())
        rows = max(1, lines - log_rows(lines))
        if self.size != (columns, lines):
            # a blank screen (what was there scrolls into history), frame rows, then the region
            self.out.write("\n" * lines + f"\x1b[{rows + 1};{lines}r\x1b[{rows + 1};1H")
            self.size = (columns, lines)
        return columns, lines, rows

    def _rows(self, columns: int, rows: int) -> list[str]:
        buffer = io.StringIO()
        console = Console(file=buffer, width=columns, height=rows, force_terminal=self.color,
                          color_system="standard" if self.color else None, highlight=False,
                          legacy_windows=False)
        console.print(self.frame(columns, rows))
        text = buffer.getvalue().split("\n")[:rows]
        return text + [""] * (rows - len(text))

    def draw(self) -> None:
        columns, _lines, rows = self._layout()
        text = self._rows(columns, rows)
        body = "".join(f"\x1b[{i + 1};1H\x1b[2K{row}" for i, row in enumerate(text))
        self.out.write(f"\x1b7\x1b[?25l{body}\x1b8")
        self.out.flush()

    def settle(self) -> None:
        """The last frame, AFTER_ROWS shorter: the rows below it scroll up by as many, so the
        summary lines and the prompt that follow have room and push none of the frame off."""
        columns, lines, rows = self._layout()
        k = min(AFTER_ROWS, rows - 1)
        text = self._rows(columns, rows - k)
        body = "".join(f"\x1b[{i + 1};1H\x1b[2K{row}" for i, row in enumerate(text))
        # scroll rows rows-k+1 .. lines up by k (DECSTBM homes the cursor: save and restore it),
        # then the whole screen scrolls again and the cursor follows the lines it was after
        lift = f"\x1b7\x1b[{rows - k + 1};{lines}r\x1b[{lines};1H\x1b[{k}S\x1b[r\x1b8\x1b[{k}A" if k else ""
        self.out.write(f"{lift}\x1b7{body}\x1b8\x1b[?25h")
        self.out.flush()

    def __enter__(self) -> LiveScreen:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.settle()


class Keys:
    """Keys typed at the terminal (stdin is data): cbreak mode while watching, restored after."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: list[Any] | None = None

    def __enter__(self) -> Keys:
        try:
            self.fd = os.open("/dev/tty", os.O_RDONLY | os.O_NONBLOCK)
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        except OSError:
            self.close()
        return self

    def quit_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True once `q` was typed."""
        if self.fd is None:
            select.select([], [], [], seconds)
            return False
        ready, _, _ = select.select([self.fd], [], [], seconds)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            return b"q" in os.read(self.fd, 64).lower()
        return False

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError, termios.error):
                if self.saved is not None:
                    termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            os.close(self.fd)
        self.fd = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def colored(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set or the terminal is dumb."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
