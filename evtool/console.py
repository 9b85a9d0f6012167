"""The one way evtool speaks on stderr: `evtool STAGE: message`, secrets redacted, control
characters shown, never a traceback (every layer may say something)."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable

from evtool.core.printable import printable
from evtool.core.secrets import redact


def say(stage: str, message: str) -> None:
    """One line on stderr."""
    with contextlib.suppress(OSError):
        sys.stderr.write(f"evtool {stage}: {printable(redact(message))}\n")
        sys.stderr.flush()


def speaker(stage: str) -> Callable[[str], None]:
    """`say` for one stage, for a part that is told only how to speak (the broker link)."""
    return functools.partial(say, stage)
