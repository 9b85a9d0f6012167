"""Reading ahead in a child process: the child reads the input and runs a stage's pure per-line
work on each batch while the stage is still busy with the batches before.

The child is a fork of the stage, taken before the stage opens its outputs: it starts with the
work and the modules already in memory (a fresh interpreter spent 50 ms importing them while the
stage waited), reads the same descriptor, splits and cuts lines exactly as `FdSource` does, and
sends each batch with its work's result in frames (transports.frames) of marshal payloads, the
lines themselves in shared memory (transports.ring). The stage reads nothing itself; when it
waits for the child (the child is the slower), the child sends the batch under way with the work
done so far and the stage does the rest, so the two share the work. If the child dies, a regular
file is read on from where its last batch ended; a pipe cannot be, so the stage fails saying so,
rather than lose what the child had read."""

from __future__ import annotations

import contextlib
import gc
import marshal
import mmap
import os
import select
import signal
import stat
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from evtool.transports.base import Batch, Source, TransportError
from evtool.transports.frames import FrameReader, send
from evtool.transports.ring import RING_BYTES, Ring
from evtool.transports.stdio import FdSource, widen_pipe

Work = Callable[[list[bytes]], list[Any]]
SLICE = 256             # lines the child works on between looks at whether the stage waits
PR_SET_PDEATHSIG = 1


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _die_with_parent(parent: int) -> None:
    """A child blocked reading a quiet input would outlive a stage killed with -9."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:          # the stage died before the line above took effect
        os._exit(1)


def _only(keep: set[int]) -> None:
    """Every descriptor but `keep` closed (0 and 1 onto /dev/null): a copy of the stage's stdout
    would keep the next stage of a pipeline waiting for its end."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for std in {0, 1} - keep:
            os.dup2(null, std)
        os.close(null)
    low = 3
    for fd in sorted(keep | {2}):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _serve(fd: int, cap: int, work: Work, out_fd: int, parent: int, idle: mmap.mmap, ring: Ring) -> None:
    """The child: batches of `fd` and `work`'s result for each, in frames on `out_fd`. Once the
    stage is `idle` (it waits for the child), a batch goes with the work done so far and the stage
    does the rest while the child reads on: the slower of the two no longer sets the pace."""
    for stop in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(stop, signal.SIG_DFL)         # the stage's own handlers are for the stage
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C reaches the group: the stage decides
    _die_with_parent(parent)
    _only({fd, out_fd, ring.as_child()})
    widen_pipe(out_fd)
    source = FdSource(fd, cap, "input")
    regular = stat.S_ISREG(os.fstat(fd).st_mode)
    with open(out_fd, "wb", buffering=0) as out, contextlib.suppress(BrokenPipeError, EOFError):
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
            done = _until_idle(work, lines, idle)
            send(out, marshal.dumps((ring.put(lines) or lines, done,
                                     source.position() if regular else None)))


def _until_idle(work: Work, lines: list[bytes], idle: mmap.mmap) -> list[Any]:
    """`work` over the first lines of a batch, a slice at a time, until the stage waits for it."""
    done: list[Any] = []
    for at in range(0, len(lines), SLICE):
        if idle[0]:
            break
        done += work(lines[at:at + SLICE])
    return done


def _fork_child(fd: int, cap: int, work: Work, idle: mmap.mmap, ring: Ring) -> tuple[int, int]:
    """(pid, read end of its frames) of a child serving `fd`; it never returns into the stage."""
    parent = os.getpid()
    read_end, write_end = os.pipe()
    gc.freeze()             # the child's collections leave the heap it shares untouched
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:
        status = 0
        try:
            _serve(fd, cap, work, write_end, parent, idle, ring)
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
                sys.stderr.flush()
            status = 1
        finally:
            os._exit(status)
    gc.unfreeze()
    os.close(write_end)
    ring.as_stage()
    return pid, read_end


class _Child:
    """The forked child, as the stage keeps it: its pid and the end its frames arrive on."""

    def __init__(self, pid: int, frames: int) -> None:
        self.pid, self.frames = pid, frames

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        os.close(self.frames)


class ReadAheadSource(Source):
    """An `FdSource` read by a child process, which also runs `work` on every batch;
    `prepared(lines)` is that result while `lines` is the batch last returned."""

    def __init__(self, inner: FdSource, work: Work, ring_bytes: int = RING_BYTES) -> None:
        self.inner = inner
        self.description = inner.description
        self._ended = False
        self._last: tuple[list[bytes], list[Any]] | None = None
        self._extent = inner.extent()       # before the child moves the shared offset
        # where this file would be read on if the child died; a pipe cannot be
        self._resume = inner.position() if self._extent is not None else None
        self._fallback: FdSource | None = None
        self._idle = mmap.mmap(-1, 1)       # shared with the child: the stage waits for a frame
        self._ring = Ring(ring_bytes)
        try:
            pid, frames = _fork_child(inner.fd, inner.cap, work, self._idle, self._ring)
        except OSError:
            self._ring.close()
            self._idle.close()
            raise
        self._child: _Child | None = _Child(pid, frames)
        self._frames = FrameReader(frames)
        widen_pipe(frames)

    def reads_file(self, path: str) -> bool:
        return self.inner.reads_file(path)

    def extent(self) -> tuple[int, int] | None:
        return self._extent

    def offset(self) -> int:
        return self.inner.offset()

    def prepared(self, lines: list[bytes]) -> list[Any] | None:
        """The work's result for the first lines of `lines` when they are the last batch (all of
        them, unless the stage waited for the child); else None."""
        last = self._last
        return last[1] if last is not None and last[0] is lines else None

    def read(self, timeout: float | None = None) -> Batch | None:
        self._last = None
        if self._fallback is not None:
            return self._fallback.read(timeout)
        if self._ended:
            return None
        assert self._child is not None
        rfd = self._child.frames
        self._idle[0] = 1
        try:
            while True:
                if timeout is not None and not select.select([rfd], [], [], timeout)[0]:
                    return Batch([])
                try:
                    payload = self._frames.read()
                except EOFError:
                    return self._take_over(timeout)
                if payload is not None:
                    break
        finally:
            self._idle[0] = 0
        message = marshal.loads(payload)
        payload.release()
        if message is None:
            self._ended = True
            self._stop()
            return None
        if message[0] == "error":
            raise TransportError(message[1])
        where, result, self._resume = message
        lines = where if type(where) is list else self._ring.take(where)
        self._last = (lines, result)
        return Batch(lines)

    def _take_over(self, timeout: float | None) -> Batch | None:
        """The child died: a file is read on here from where its last batch ended."""
        self._stop()
        self._frames.reset()    # a frame the child was cut off writing
        if self._resume is None:
            raise TransportError(f"the process reading {self.description} ahead died: what it "
                                 "had read but not passed on is lost")
        self.inner.go_on_from(self._resume)
        self._fallback = self.inner
        return self._fallback.read(timeout)

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop()

    def close(self) -> None:
        self._stop()
        self._idle.close()
        self._ring.close()
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
    """`source` read ahead by a child when it is a descriptor and a CPU is free for it; never in
    a process with threads, whose locks a fork would copy held."""
    if not isinstance(source, FdSource) or not spare_cpu() or threading.active_count() > 1:
        return source
    try:
        return ReadAheadSource(source, work)
    except OSError:
        return source

