"""Progress of long work on stderr, only when stderr is a terminal: rich's bar with rate and ETA.
Nothing is written when stderr is a pipe or a file, so scripts and logs see no difference."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable


def on_terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class Meter:
    """One bar: `tick()` reads how far the work is (records made, or bytes of the input file read)."""

    def __init__(self, what: str, total: float, position: Callable[[], float] | None = None,
                 in_bytes: bool = False) -> None:
        # imported here: a stage whose stderr is no terminal never draws and starts 90 ms sooner
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        amount = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else \
            (MofNCompleteColumn(), TextColumn("{task.fields[rate]}"))
        self.position = position
        self.progress = Progress(TextColumn(f"evtool {what}"), BarColumn(), TaskProgressColumn(), *amount,
                                 TextColumn("eta"), TimeRemainingColumn(),
                                 console=Console(file=sys.stderr), transient=True, redirect_stdout=False,
                                 refresh_per_second=5)
        self.task = self.progress.add_task(what, total=total, rate="")
        self.progress.start()

    def tick(self, done: float | None = None) -> None:
        if done is None:
            done = self.position() if self.position is not None else 0.0
        self.progress.update(self.task, completed=done)
        speed = self.progress.tasks[0].speed
        if speed:
            self.progress.update(self.task, rate=f"{speed:,.0f}/s")

    def close(self) -> None:
        """Erase the bar, so the stage's summary line is the only trace."""
        self.progress.stop()


def writes_a_file(output_spec: str) -> bool:
    """-o FILE, or standard output redirected to a regular file (not a pipe, not the terminal)."""
    if output_spec.lower().startswith("amqp"):
        return False
    if output_spec != "-":
        return True
    try:
        return stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def counting(what: str, total: int | None, quiet: bool) -> Meter | None:
    """A bar over `total` records, when there is one and stderr is a terminal."""
    if quiet or not total or not on_terminal():
        return None
    return Meter(what, total)


def reading(what: str, where: tuple[int, int] | None, position: Callable[[], int],
            quiet: bool) -> Meter | None:
    """A bar over the bytes of the input file (`where` = start offset, size), rate and ETA from it."""
    if quiet or where is None or not on_terminal():
        return None
    start, size = where
    if size - start <= 0:
        return None
    return Meter(what, size - start, lambda: position() - start, in_bytes=True)
