"""Process-wide runtime settings that make the stages several times cheaper on system time:
every evtool process applies them, the stages and the helpers they start alike."""

from __future__ import annotations

import ctypes
import gc
import sys

M_TOP_PAD = -2
TOP_PAD = 64 << 20


def tune_runtime() -> None:
    """Fewer GC passes and no heap-trim churn.

    Parsing allocates a dict per record, and stages make no reference cycles on their hot paths:
    default GC thresholds spent a third of aggregate's time in collections. glibc trims the heap
    top after each orjson.dumps frees its buffer and faults it back in on the next call (one page
    fault per record, over half the run time as system time); a 64 MiB top pad stops that.
    """
    gc.set_threshold(100_000, 50, 100)
    if not sys.platform.startswith("linux"):
        return
    try:
        # the process's own symbols, libc's among them: find_library would run `ldconfig -p` (a
        # child process, and tens of ms at every start)
        libc = ctypes.CDLL(None)
        libc.mallopt(M_TOP_PAD, TOP_PAD)
    except (OSError, AttributeError):
        pass
