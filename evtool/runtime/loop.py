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

import orjson

from evtool.console import say
from evtool.core.records import deadletter, reject_oversize
from evtool.core.stats import Stats
from evtool.errors import EndFailed
from evtool.runtime.progress import Meter
from evtool.transports.base import Batch, OutputClosed, Sink, Source, TransportError

# After a signal, how long the last flush may wait on a broker that does not confirm.
LAST_FLUSH_S = 5.0


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130
    TERMINATED = 143


class Processor(Protocol):
    """A filter stage, as the loop drives it: everything the loop reads is declared here."""

    stats: Stats

    @property
    def unsafe_batches(self) -> int:
        """How many of the newest input batches must not be acked yet (their effect is not safe)."""

    @property
    def newest_event_time(self) -> float | None:
        """Event time (epoch seconds) of the newest event counted, for the latency metric."""

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None: ...
    def idle(self, out: list[bytes], dead: list[bytes]) -> None: ...
    def finish(self, out: list[bytes], dead: list[bytes]) -> None: ...

    def still_open(self, lines: list[bytes]) -> list[bytes]:
        """At a stop on a broker: of the unacked lines, those whose work is not done, which must
        come again (the rest are acked)."""


class Acks:
    """Acks input batches in order, holding back the newest ones the processor says are unsafe
    (audit before its commit, aggregate while a window that counted them is open)."""

    def __init__(self, source: Source, processor: Processor) -> None:
        self.source = source
        self.processor = processor
        self.waiting: deque[object] = deque()
        self.last: object = None            # the token of the newest batch processed

    def done(self, token: object) -> None:
        self.waiting.append(token)
        self.last = token
        self.release()

    def release(self) -> None:
        keep = self.processor.unsafe_batches
        last = None
        while len(self.waiting) > keep:
            last = self.waiting.popleft()
        if last is not None:
            self.source.ack(last)


class StageFailed(Exception):
    """A stage cannot go on (its input, output, database or port): one line on stderr, exit 1."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message


class Interrupted(BaseException):
    """A signal. A BaseException, as KeyboardInterrupt is: the `except Exception` guarding a
    schema compile or a parse must not take it for a failure of its own (it did: a SIGINT
    during startup's compile ended validate with exit 2, "invalid JSON Schema")."""

    def __init__(self, status: ExitStatus) -> None:
        super().__init__(status.name)
        self.status = status


def status_of(signum: int) -> ExitStatus:
    return ExitStatus.INTERRUPTED if signum == signal.SIGINT else ExitStatus.TERMINATED


def stop_at_once(signum: int, _frame: FrameType | None) -> None:
    """Until a stage's loop takes over (connecting, retrying, verifying), a signal ends it now."""
    raise Interrupted(status_of(signum))


def install_early_signals() -> None:
    signal.signal(signal.SIGINT, stop_at_once)
    signal.signal(signal.SIGTERM, stop_at_once)


class Signals:
    """SIGINT/SIGTERM stop a stage between batches; while it blocks (reading, waiting for the
    broker's confirms) they stop it at once."""

    def __init__(self) -> None:
        self.pending: ExitStatus | None = None
        self._blocking = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        status = status_of(signum)
        again = self.pending is not None
        self.pending = status
        if self._blocking or again:
            raise Interrupted(status)

    @contextlib.contextmanager
    def blocking(self, stops: bool = True) -> Iterator[None]:
        """`stops=False`: only a second signal stops what runs inside (a write to a pipe)."""
        if self.pending is not None:
            raise Interrupted(self.pending)
        self._blocking = stops
        try:
            yield
        finally:
            self._blocking = False


class SummaryFormat:
    """Whether the summary is one JSON object on stderr (`--summary-json`), for the whole run."""

    json = False


SUMMARY = SummaryFormat()


def say_summary(stage: str, line: str, counts: dict[str, object]) -> None:
    """The summary line, or with --summary-json the same counts as one JSON object."""
    if not SUMMARY.json:
        say(stage, line)
        return
    with contextlib.suppress(OSError):
        sys.stderr.write(orjson.dumps({"stage": stage, **counts}).decode() + "\n")
        sys.stderr.flush()


class Outputs:
    """The output sink and, when it is another one, the dead-letter sink."""

    def __init__(self, sink: Sink, dead_sink: Sink | None, stats: Stats, stage: str = "") -> None:
        self.sink = sink
        self.dead_sink = dead_sink
        self.stats = stats
        self.stage = stage
        self._dead_counted = 0
        self._unsettled = 0

    def lists(self) -> tuple[list[bytes], list[bytes]]:
        out: list[bytes] = []
        return out, (out if self.dead_sink is None else [])

    def deliver(self, out: list[bytes], dead: list[bytes], within: float | None = None) -> None:
        """Write and flush; returns once everything is safe downstream."""
        self.send(out, dead)
        self.settle(within)

    def send(self, out: list[bytes], dead: list[bytes]) -> None:
        """Write a batch's records (what the sink cannot carry becomes a dead letter); `settle`
        makes them safe."""
        new_dead = sum(self.stats.dead.values()) - self._dead_counted
        self.sink.write(out)
        refused = self.sink.refused()
        letters = [deadletter(self.stage, "schema", f"cannot publish: {why}", line)
                   for line, why in refused]
        for _ in letters:
            self.stats.add_dead("schema")
        if dead is out:
            self.sink.write(letters)
            self._unsettled += len(out) - new_dead - len(refused)
        else:
            if self.dead_sink is not None and (dead or letters):
                self.dead_sink.write(dead + letters)
            self._unsettled += len(out) - len(refused)
        self._dead_counted = sum(self.stats.dead.values())

    def settle(self, within: float | None = None) -> None:
        """Block until everything sent is safe downstream; records are counted out only then."""
        if self.dead_sink is not None:
            self.dead_sink.flush(within)
        self.sink.flush(within)
        dropped = self.sink.dropped()
        self.stats.out += self._unsettled - dropped
        self.stats.unroutable += dropped
        self._unsettled = 0

    @property
    def stops_mid_flush(self) -> bool:
        return all(sink.stops_mid_flush for sink in (self.sink, self.dead_sink) if sink is not None)

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
    progress: Meter | None = None,
) -> ExitStatus:
    """Drive a stage to the end of its input, a signal or a failure, and say how it went."""
    stats = processor.stats
    signals = Signals()
    signals.install()
    started = clock()
    status = ExitStatus.OK
    acks = Acks(source, processor)
    in_hand: Batch | None = None      # the batch whose output is written but not yet safe
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
            if batch.lines or batch.token is not None:      # (all its lines may have been skipped)
                lines = reject_oversize(stage, batch.lines, max_line_bytes, stats, dead)
                processor.process(lines, out, dead)
                outputs.send(out, dead)
                in_hand = batch
                with signals.blocking(outputs.stops_mid_flush):
                    outputs.settle()
                in_hand = None
                acks.done(batch.token)
                if on_batch is not None:
                    on_batch()
                if progress is not None:
                    progress.tick()
            else:
                processor.idle(out, dead)
                outputs.deliver(out, dead)
                acks.release()
        else:
            raise Interrupted(signals.pending)
    except Interrupted as stop:
        status = stop.status
        # a second signal gives up this last flush
        with contextlib.suppress(OutputClosed, TransportError, Interrupted):
            if source.redelivers:
                # the batch in hand is finished and acked; what is not read comes again
                if in_hand is not None:
                    outputs.settle(LAST_FLUSH_S)
                    acks.done(in_hand.token)
                if acks.last is not None:       # (a batch read but never processed comes again)
                    source.ack_all_but(processor.still_open, acks.last)
            else:
                out, dead = outputs.lists()
                processor.finish(out, dead)
                outputs.deliver(out, dead, LAST_FLUSH_S)
    except OutputClosed:
        silence_stdout()
        return ExitStatus.OK
    except EndFailed as exc:            # a transport's, or the audit database's
        say(stage, f"error: {exc}")
        status = ExitStatus.FAILURE
    finally:
        if progress is not None:
            progress.close()
        source.close()
        outputs.close()
    if not quiet:
        seconds = clock() - started
        say_summary(stage, stats.summary(seconds), stats.as_json(seconds))
    return status


def silence_stdout() -> None:
    """After `| head` closed the pipe, make interpreter shutdown's flush of stdout harmless."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
