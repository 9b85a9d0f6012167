"""Reading ahead in a child process: the child reads the input and runs a stage's pure per-line
work on each batch while the stage is still busy with the batches before.

The child holds the same descriptor: it reads, splits and cuts lines exactly as `FdSource`
does, and sends each batch with its work's result in frames (transports.frames) of marshal
payloads. The stage never waits on the child unless the child is slower, and reads nothing
itself. If the child dies, a regular file is read on from where its last batch ended; a pipe
cannot be, so the stage fails saying so, rather than lose what the child had read."""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import pickle
import select
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from evtool.transports.base import Batch, Source, TransportError
from evtool.transports.frames import send, take
from evtool.transports.stdio import CHUNK, FdSource, read_chunk, widen_pipe
from evtool.tuning import tune_runtime

PATH_ENV = "EVTOOL_READAHEAD_PATH"
CHILD = (f"import json, os, sys; sys.path[:] = json.loads(os.environ[{PATH_ENV!r}]); "
         "from evtool.transports.readahead import serve; serve()")
Work = Callable[[list[bytes]], Any]
PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """A child blocked reading a quiet input would outlive a stage killed with -9."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def serve() -> None:
    """The child: argv names the input descriptor and the line cap; stdin brings the work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C reaches the group: the stage decides
    _die_with_parent()
    tune_runtime()
    fd, cap = int(sys.argv[1]), int(sys.argv[2])
    work: Work = pickle.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    widen_pipe(1)
    source = FdSource(fd, cap, "input")
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    with contextlib.suppress(BrokenPipeError):
        while True:
            try:
                batch = source.read()
            except TransportError as exc:
                send(out, marshal.dumps(("error", str(exc))))
                return
            if batch is None:
                send(out, marshal.dumps(None))
                return
            lines = batch.lines
            send(out, marshal.dumps((lines, work(lines), source.position() if regular else None)))


class ReadAheadSource(Source):
    """An `FdSource` read by a child process, which also runs `work` on every batch;
    `prepared(lines)` is that result while `lines` is the batch last returned."""

    def __init__(self, inner: FdSource, work: Work) -> None:
        self.inner = inner
        self.description = inner.description
        self._got = bytearray()
        self._buffer = bytearray(CHUNK)
        self._ended = False
        self._last: tuple[list[bytes], Any] | None = None
        self._extent = inner.extent()       # before the child moves the shared offset
        # where this file would be read on if the child died; a pipe cannot be
        self._resume = inner.position() if self._extent is not None else None
        self._fallback: FdSource | None = None
        env = {**os.environ, PATH_ENV: json.dumps(sys.path)}
        fd = os.dup(inner.fd)       # the same open file, under a number the child's stdin is not
        try:
            self._child: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(fd), str(inner.cap)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, env=env, pass_fds=(fd,))
        finally:
            os.close(fd)
        assert self._child.stdin is not None and self._child.stdout is not None
        widen_pipe(self._child.stdout.fileno())
        try:
            with self._child.stdin as to_child:
                to_child.write(pickle.dumps(work))
        except (OSError, pickle.PickleError):
            self._stop()
            raise

    def reads_file(self, path: str) -> bool:
        return self.inner.reads_file(path)

    def extent(self) -> tuple[int, int] | None:
        return self._extent

    def offset(self) -> int:
        return self.inner.offset()

    def prepared(self, lines: list[bytes]) -> Any | None:
        """The work's result for `lines` when they are the last batch, whole; else None."""
        last = self._last
        return last[1] if last is not None and last[0] is lines else None

    def read(self, timeout: float | None = None) -> Batch | None:
        self._last = None
        if self._fallback is not None:
            return self._fallback.read(timeout)
        if self._ended:
            return None
        child = self._child
        assert child is not None and child.stdout is not None
        rfd = child.stdout.fileno()
        while (payload := take(self._got)) is None:
            if timeout is not None and not select.select([rfd], [], [], timeout)[0]:
                return Batch([])
            chunk = read_chunk(rfd, self._buffer)
            if not chunk:
                return self._take_over(timeout)
            self._got += chunk
        message = marshal.loads(payload)
        if message is None:
            self._ended = True
            self._stop()
            return None
        if message[0] == "error":
            raise TransportError(message[1])
        lines, result, self._resume = message
        self._last = (lines, result)
        return Batch(lines)

    def _take_over(self, timeout: float | None) -> Batch | None:
        """The child died: a file is read on here from where its last batch ended."""
        self._stop()
        self._got.clear()       # a frame the child was cut off writing
        if self._resume is None:
            raise TransportError(f"the process reading {self.description} ahead died: what it "
                                 "had read but not passed on is lost")
        self.inner.go_on_from(self._resume)
        self._fallback = self.inner
        return self._fallback.read(timeout)

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(OSError):
                child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()

    def close(self) -> None:
        self._stop()
        self.inner.close()


def spare_cpu(loadavg: str | None = None) -> bool:
    """Whether a CPU is free now: fewer threads runnable (the fourth field of /proc/loadavg, this
    process among them) than CPUs. A child reading ahead on a machine with no free CPU only takes
    turns with the stage (aggregate beside a busy broker ran at half its speed) or with the other
    stages of its shell pipeline."""
    cpus = usable_cpus()
    try:
        if loadavg is None:
            with open("/proc/loadavg") as f:
                loadavg = f.read()
        running = int(loadavg.split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return cpus >= 2
    return running < cpus


def read_ahead(source: Source, work: Work) -> Source:
    """`source` read ahead by a child when it is a descriptor and a CPU is free for it."""
    if not isinstance(source, FdSource) or not spare_cpu():
        return source
    try:
        return ReadAheadSource(source, work)
    except (OSError, pickle.PickleError):
        return source

