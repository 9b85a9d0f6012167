"""The loop of the stages that only produce (gen, replay): write in batches, pace by event time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from itertools import islice
from operator import itemgetter

from evtool.console import say
from evtool.core.instant import TimeError
from evtool.core.pacing import Pacer
from evtool.runtime.loop import LAST_FLUSH_S, ExitStatus, Interrupted, Signals, say_summary
from evtool.runtime.progress import Meter
from evtool.transports.base import OutputClosed, Sink, TransportError

BATCH = 4096
MIN_SLEEP = 0.002


def pump(stage: str, items: Iterable[tuple[float, bytes]], sink: Sink, pacer: Pacer | None,
         quiet: bool, describe: Callable[[int], str] = lambda n: f"{n} out",
         progress: Meter | None = None) -> ExitStatus:
    """Write (event_seconds, line) items; with a pacer, sleep so event time flows in real time."""
    signals = Signals()
    signals.install()
    started = time.monotonic()
    written = 0
    status = ExitStatus.OK
    pending: list[bytes] = []

    unflushed = dropped = 0

    def write_pending(flush: bool) -> None:
        """Written counts only what a flush made safe: a broker that refuses or drops a record
        leaves it out."""
        nonlocal written, pending, unflushed, dropped
        sink.write(pending)
        refused = sink.refused()
        if refused:
            say(stage, f"error: {len(refused)} record(s) not sent: {refused[0][1]}")
        unflushed += len(pending) - len(refused)
        pending = []
        if flush:
            if signals.pending is None:
                with signals.blocking(sink.stops_mid_flush):
                    sink.flush()
            else:                    # the last flush after a signal: bounded, a second one ends it
                sink.flush(LAST_FLUSH_S)
            lost = sink.dropped()
            written, unflushed, dropped = written + unflushed - lost, 0, dropped + lost
        if progress is not None:
            progress.tick(written + unflushed)

    try:
        if pacer is None:               # batches taken in C: no Python step per line
            lines = map(itemgetter(1), items)
            while True:
                pending.extend(islice(lines, BATCH))    # what came before an error is kept
                if not pending:
                    break
                write_pending(flush=False)
                if signals.pending is not None:
                    raise Interrupted(signals.pending)
        else:
            for at, line in items:
                wait = pacer.delay(at)
                if wait > MIN_SLEEP:
                    write_pending(flush=True)
                    with signals.blocking():
                        time.sleep(wait)
                pending.append(line)
                if len(pending) >= BATCH:
                    write_pending(flush=False)
                    if signals.pending is not None:
                        raise Interrupted(signals.pending)
        write_pending(flush=True)
    except Interrupted as stop:
        status = stop.status
        with contextlib.suppress(OutputClosed, TransportError, Interrupted):
            write_pending(flush=True)
    except OutputClosed:
        return ExitStatus.OK
    except TimeError as exc:             # the items ran out of time: keep what was made
        with contextlib.suppress(OutputClosed, TransportError):
            write_pending(flush=True)
        say(stage, f"error: {exc}")
        status = ExitStatus.FAILURE
    except TransportError as exc:
        say(stage, f"error: {exc}")
        status = ExitStatus.FAILURE
    finally:
        if progress is not None:
            progress.close()
        with contextlib.suppress(OutputClosed, TransportError):
            sink.close()
    if not quiet:
        seconds = time.monotonic() - started
        unroutable = f", {dropped} dropped by the broker (no queue bound)" if dropped else ""
        rate = written / seconds if seconds else 0.0
        say_summary(stage, f"{describe(written)}{unroutable}, {seconds:.2f} s, {rate:,.0f} records/s",
                    {"out": written, "unroutable": dropped, "seconds": round(seconds, 3),
                     "records_per_s": round(rate, 1)})
    return status
