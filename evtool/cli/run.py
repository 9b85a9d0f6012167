"""The loop every filter stage shares: read a batch, process it, write it, ack it; signals and exits."""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Protocol

from evtool.core.records import reject_oversize
from evtool.core.secrets import redact
from evtool.core.stats import Stats
from evtool.store.sqlite import StoreError
from evtool.transports.base import OutputClosed, Sink, Source, TransportError


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130
    TERMINATED = 143


class Processor(Protocol):
    stats: Stats

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None: ...
    def idle(self, out: list[bytes], dead: list[bytes]) -> None: ...
    def finish(self, out: list[bytes], dead: list[bytes]) -> None: ...


class Acks:
    """Acks input batches in order, holding back the newest ones the processor says are unsafe
    (audit before its commit, aggregate while a window that counted them is open)."""

    def __init__(self, source: Source, processor: Processor) -> None:
        self.source = source
        self.processor = processor
        self.waiting: deque[object] = deque()

    def done(self, token: object) -> None:
        self.waiting.append(token)
        self.release()

    def release(self) -> None:
        keep = getattr(self.processor, "unsafe_batches", 0)
        last = None
        while len(self.waiting) > keep:
            last = self.waiting.popleft()
        if last is not None:
            self.source.ack(last)


class Interrupted(Exception):
    def __init__(self, status: ExitStatus) -> None:
        super().__init__(status.name)
        self.status = status


class Signals:
    """SIGINT/SIGTERM stop a stage between batches; while it blocks reading they stop it at once."""

    def __init__(self) -> None:
        self.pending: ExitStatus | None = None
        self._blocking = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        status = ExitStatus.INTERRUPTED if signum == signal.SIGINT else ExitStatus.TERMINATED
        self.pending = status
        if self._blocking:
            raise Interrupted(status)

    @contextlib.contextmanager
    def blocking(self) -> Iterator[None]:
        if self.pending is not None:
            raise Interrupted(self.pending)
        self._blocking = True
        try:
            yield
        finally:
            self._blocking = False


def say(stage: str, message: str) -> None:
    """One line on stderr, never a traceback."""
    with contextlib.suppress(OSError):
        sys.stderr.write(f"evtool {stage}: {redact(message)}\n")
        sys.stderr.flush()


class Outputs:
    """The output sink and, when it is another one, the dead-letter sink."""

    def __init__(self, sink: Sink, dead_sink: Sink | None, stats: Stats) -> None:
        self.sink = sink
        self.dead_sink = dead_sink
        self.stats = stats
        self._dead_counted = 0

    def lists(self) -> tuple[list[bytes], list[bytes]]:
        out: list[bytes] = []
        return out, (out if self.dead_sink is None else [])

    def deliver(self, out: list[bytes], dead: list[bytes]) -> None:
        """Write and flush; returns once everything is safe downstream."""
        dead_now = sum(self.stats.dead.values())
        if dead is out:
            self.sink.write(out)
            self.sink.flush()
            self.stats.out += len(out) - (dead_now - self._dead_counted)
            self._dead_counted = dead_now
            return
        self._dead_counted = dead_now
        self.sink.write(out)
        self.stats.out += len(out)
        if self.dead_sink is not None and dead:
            self.dead_sink.write(dead)
            self.dead_sink.flush()
        self.sink.flush()

    def close(self) -> None:
        for sink in (self.sink, self.dead_sink):
            if sink is not None:
                with contextlib.suppress(OSError, OutputClosed, TransportError):
                    sink.close()


def run_filter(
    stage: str,
    processor: Processor,
    source: Source,
    outputs: Outputs,
    *,
    quiet: bool,
    max_line_bytes: int,
    idle_after: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_batch: Callable[[], None] | None = None,
) -> ExitStatus:
    """Drive a stage to the end of its input, a signal or a failure, and say how it went."""
    stats = processor.stats
    signals = Signals()
    signals.install()
    started = clock()
    status = ExitStatus.OK
    acks = Acks(source, processor)
    try:
        while signals.pending is None:
            with signals.blocking():
                batch = source.read(idle_after)
            out, dead = outputs.lists()
            if batch is None:
                processor.finish(out, dead)
                outputs.deliver(out, dead)
                acks.release()
                break
            if batch.lines:
                lines = reject_oversize(stage, batch.lines, max_line_bytes, stats, dead)
                processor.process(lines, out, dead)
                outputs.deliver(out, dead)
                acks.done(batch.token)
                if on_batch is not None:
                    on_batch()
            else:
                processor.idle(out, dead)
                outputs.deliver(out, dead)
                acks.release()
        else:
            raise Interrupted(signals.pending)
    except Interrupted as stop:
        status = stop.status
        if not source.redelivers:
            with contextlib.suppress(OutputClosed, TransportError):
                out, dead = outputs.lists()
                processor.finish(out, dead)
                outputs.deliver(out, dead)
    except OutputClosed:
        _silence_stdout()
        return ExitStatus.OK
    except (TransportError, StoreError) as exc:
        say(stage, f"error: {exc}")
        status = ExitStatus.FAILURE
    finally:
        source.close()
        outputs.close()
    if not quiet:
        say(stage, stats.summary(clock() - started))
    return status


def _silence_stdout() -> None:
    """After `| head` closed the pipe, make interpreter shutdown's flush of stdout harmless."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
