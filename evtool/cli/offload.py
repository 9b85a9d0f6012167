"""A stage's pure per-line work in a child process, so that it overlaps the stage's own work.

The child is fed parts of a batch over a pipe, in order, and answers each with its result; the
stage counts one part while the child reads the next. Frames (transports.frames) carry marshal
payloads (lines in, results out: str, int, bytes, tuples and None only)."""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import pickle
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from evtool.transports.frames import frame, receive, send, take
from evtool.transports.stdio import widen_pipe

T = TypeVar("T")
PART = 512          # lines per part, at most
FIRST = 64          # lines in a batch's first part: the wait for it is the only one not overlapped
LEAST = 2048        # a smaller batch (a live stream's) stays here: a child adds no latency to it
PATH_ENV = "EVTOOL_OFFLOAD_PATH"
CHILD = (f"import json, os, sys; sys.path[:] = json.loads(os.environ[{PATH_ENV!r}]); "
         "from evtool.cli.offload import serve; serve()")


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def serve() -> None:
    """The child: the first frame is the pickled work, every later one a part to run it on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C reaches the group: the stage decides
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    widen_pipe(0)
    widen_pipe(1)
    first = receive(inp)
    if first is None:
        return
    work = pickle.loads(first)
    while (part := receive(inp)) is not None:
        send(out, marshal.dumps(work(marshal.loads(part))))


class Offload(Generic[T]):
    """Cuts a large batch into parts for one child process and yields each part with its result
    as soon as it is back. `work` must be a pure, picklable function of the lines, its result
    made of plain values: if the child cannot be had or fails, the same work is done here, so the
    result never differs and nothing is lost, only the overlap."""

    def __init__(self, work: Callable[[list[bytes]], T], part: int = PART, least: int = LEAST) -> None:
        self.work, self.part, self.least = work, part, least
        self._child: subprocess.Popen[bytes] | None = None
        self._here = usable_cpus() < 2
        self._got = bytearray()

    def __call__(self, lines: list[bytes]) -> Iterator[tuple[list[bytes], T]]:
        if self._here or len(lines) < self.least or (self._child is None and not self._start()):
            yield lines, self.work(lines)
            return
        parts = self._cut(lines)
        pending = memoryview(b"".join(frame(marshal.dumps(part)) for part in parts))
        received = 0
        try:
            for part in parts:
                result: Any = None
                if not self._here:
                    pending, payload = self._exchange(pending)
                    if payload is not None:
                        received += 1
                        result = marshal.loads(payload)
                yield part, result if not self._here else self.work(part)
        finally:
            if received < len(parts) and not self._here:
                self._give_up()         # left early: answers still on their way would be misread

    def _cut(self, lines: list[bytes]) -> list[list[bytes]]:
        """Parts that grow by a third from FIRST to `part` lines: the child, reading faster than
        the stage counts, stays a part ahead, and the stage waits only for the first, small one."""
        parts, at, size = [], 0, min(FIRST, self.part)
        while at < len(lines):
            parts.append(lines[at:at + size])
            at, size = at + size, min(self.part, size * 4 // 3)
        return parts

    def _start(self) -> bool:
        env = {**os.environ, PATH_ENV: json.dumps(sys.path)}
        try:
            child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
            assert child.stdin is not None and child.stdout is not None
            for stream in (child.stdin, child.stdout):
                widen_pipe(stream.fileno())
            os.set_blocking(child.stdin.fileno(), False)
            self._child = child
            first = memoryview(frame(pickle.dumps(self.work)))
            while first and not self._here:
                first, _ = self._exchange(first, want=False)
        except (OSError, pickle.PickleError, ValueError):
            self._give_up()
        return not self._here

    def _exchange(self, pending: memoryview, want: bool = True) -> tuple[memoryview, bytes | None]:
        """Write what the pipe takes of `pending`; with `want`, wait for the next result. On any
        failure of the child, it is given up and the caller does the work."""
        child = self._child
        assert child is not None and child.stdin is not None and child.stdout is not None
        wfd, rfd = child.stdin.fileno(), child.stdout.fileno()
        try:
            while True:
                payload = take(self._got) if want else None
                if payload is not None:
                    return self._push(wfd, pending), payload
                if not want and not pending:
                    return pending, None
                readable, writable, _ = select.select([rfd] if want else [],
                                                      [wfd] if pending else [], [])
                if writable:
                    pending = self._push(wfd, pending)
                if readable:
                    chunk = os.read(rfd, 1 << 20)
                    if not chunk:
                        raise EOFError
                    self._got += chunk
        except (OSError, EOFError, ValueError):
            self._give_up()
            return memoryview(b""), None

    @staticmethod
    def _push(wfd: int, pending: memoryview) -> memoryview:
        with contextlib.suppress(BlockingIOError):
            while pending:
                pending = pending[os.write(wfd, pending):]
        return pending

    def _give_up(self) -> None:
        self._here = True
        self._got.clear()
        self.close()

    def close(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
