"""evtool watch: a live dashboard of windows, metrics, alerts and dead letters."""

from __future__ import annotations

import contextlib
import ipaddress
import sys
import threading
import time
from typing import Any

import click
import orjson
from rich.console import Console, RenderableType

from evtool.cli.options import SECONDS_OR_ZERO, input_of, io_options, metrics_port_option, option
from evtool.cli.packs import pack_from_options
from evtool.cli.screen import Keys, LiveScreen, colored
from evtool.cli.serve import serve, serve_metrics
from evtool.console import say
from evtool.core.dashboard import DashboardStats
from evtool.core.derived import DerivedChecker
from evtool.core.pack import Pack
from evtool.runtime.loop import ExitStatus, Interrupted, Signals, say_summary
from evtool.runtime.stage import fail, inputs, refuse_overwriting
from evtool.schemas import derived_schemas
from evtool.transports.base import Source, TransportError
from evtool.transports.endpoint import Endpoint, Side
from evtool.transports.factory import open_source
from evtool.tui.render import render

REDRAW_S = 0.25


class Reader:
    """Reads on its own thread so drawing never slows reading (and the reverse)."""

    def __init__(self, source: Source, pack: Pack) -> None:
        self.source = source
        self.stats = DashboardStats(checker=DerivedChecker(derived_schemas(), pack.wire),
                                    wire=pack.wire, roles=pack.roles)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.halted = False
        self.error: str | None = None

    def run(self) -> None:
        try:
            while (batch := self.source.read(1.0)) is not None:
                if batch.lines:
                    with self.lock:
                        if self.halted:
                            return
                        self.stats.feed(batch.lines)
                self.source.ack(batch.token)
        except TransportError as exc:
            self.error = str(exc)
        except Exception as exc:  # the reader must never die silently, leaving records unread
            self.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def halt(self) -> None:
        """Count nothing more: the last frame and the summary line then say the same."""
        with self.lock:
            self.halted = True

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self.stats.snapshot(time.time(), self.source.description, self.done.is_set())


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise click.BadParameter("expected HOST:PORT or PORT, with a port from 1 to 65535",
                                 param_hint="--serve")
    return (host.strip("[]") or "127.0.0.1"), int(port)


@click.command()
@io_options
@option("--once", is_flag=True, help="No live screen: read to the end, print a summary.")
@option("--json", "as_json", is_flag=True, help="With --once: the summary as one JSON object.")
@metrics_port_option
@option("--serve", "address", default=None, metavar="HOST:PORT",
        help="Serve / (HTML), /data (JSON), /metrics (Prometheus); binds 127.0.0.1 unless told.")
@option("--linger", type=SECONDS_OR_ZERO, default=None, metavar="S",
        help="With --serve: after the input ends, serve S seconds more, then exit "
             "[default: until q or Ctrl-C].")
def watch(files: tuple[str, ...], input_spec: str, output_spec: str, amqp_url: str,
          connect_timeout: float, prefetch: int,
          quiet: bool, pack_spec: str, once: bool, as_json: bool, metrics_port: int | None,
          address: str | None, linger: float | None) -> ExitStatus:
    """Show windows, events/s, dead letters, duplicates, alerts and watermark lag as they arrive.

    \b
    Example:
      evtool gen --rate 2000 | evtool validate | evtool aggregate | evtool watch
      evtool gen --count 20000 --fast | evtool validate | evtool aggregate | evtool watch --once --json
      evtool watch -i amqp --serve 127.0.0.1:8080        # then open http://127.0.0.1:8080/

    The summary (with --once, or when stdout is not a terminal) goes to -o: '-' or a file.
    """
    input_spec, files = input_of(input_spec, files)
    if as_json and not once:
        raise click.UsageError("--json goes with --once")
    if output_spec.lower().startswith("amqp"):
        raise click.UsageError("watch writes its summary to '-' or a file, not to the broker")
    refuse_overwriting({"--output": output_spec}, {"input": input_spec, **inputs(files)})
    started = time.monotonic()
    pack = pack_from_options(pack_spec)
    where = parse_address(address) if address else None
    if where is not None and not is_loopback(where[0]):
        source_of = click.get_current_context().get_parameter_source("address")
        if source_of is not click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"--serve {address} from the environment would serve beyond this "
                                   "machine: give such an address on the command line")
        say("watch", f"serving beyond this machine on {where[0]}: anyone who can reach it can "
                     "read the dashboard")
    try:
        source = open_source(Endpoint(input_spec, amqp_url, Side.IN, "watch", prefetch, connect_timeout,
                                      wire=pack.wire, roles=pack.roles, files=files), 64 << 20)
    except TransportError as exc:
        fail("watch", str(exc))
    reader = Reader(source, pack)
    signals = Signals()
    signals.install()
    status = ExitStatus.OK
    try:
        if where is not None:
            try:
                serve(where[0], where[1], reader.snapshot)
            except OSError as exc:
                fail("watch", f"cannot serve on {address}: {exc.strerror}")
            say("watch", f"serving on http://{where[0]}:{where[1]}/")
        if metrics_port is not None:
            try:
                serve_metrics(metrics_port, reader.snapshot)
            except OSError as exc:
                fail("watch", f"cannot serve metrics on port {metrics_port}: {exc.strerror}")
        thread = threading.Thread(target=reader.run, name="watch-reader", daemon=True)
        thread.start()
        quit_early = False
        if once or not sys.stdout.isatty():
            with signals.blocking():
                while not reader.done.wait(0.2):
                    pass
        else:
            quit_early = live_screen(reader, signals)
        if where is not None and not once and not quit_early:
            serve_on(f"http://{where[0]}:{where[1]}/", linger, signals)
    except Interrupted as stop:
        status = stop.status
    reader.halt()
    if reader.error:
        say("watch", f"error: {reader.error}")
        status = ExitStatus.FAILURE
    snap = reader.snapshot()
    if once or output_spec != "-" or (where is None and not sys.stdout.isatty()):
        try:
            print_summary(snap, as_json, output_spec)
        except OSError as exc:
            say("watch", f"error: cannot write {output_spec}: {exc.strerror}")
            status = ExitStatus.FAILURE
    if not quiet:
        seconds = time.monotonic() - started
        say_summary("watch", summary_line(snap, seconds), summary_counts(snap, seconds))
    source.close()
    return status


def summary_line(snap: dict[str, Any], seconds: float) -> str:
    """`1200 records (1000 events, 40 windows, ...), 0 repeats ignored, 0.52 s, 2,308 records/s`."""
    rate = snap["records"] / seconds if seconds > 0 else 0.0
    return (f"{snap['records']} records ({snap['events']} events, {snap['windows']} windows, "
            f"{snap['metrics']} metrics, {snap['alerts']['total']} alerts, "
            f"{snap['deadletters']['total']} dead letters, {snap['unreadable']} unreadable, "
            f"{snap['rejected']} rejected), "
            f"{snap['repeated']} repeats ignored, {seconds:.2f} s, {rate:,.0f} records/s")


def summary_counts(snap: dict[str, Any], seconds: float) -> dict[str, object]:
    rate = snap["records"] / seconds if seconds > 0 else 0.0
    return {"records": snap["records"], "events": snap["events"], "windows": snap["windows"],
            "metrics": snap["metrics"], "alerts": snap["alerts"]["total"],
            "dead_letters": snap["deadletters"]["total"], "unreadable": snap["unreadable"],
            "rejected": snap["rejected"], "repeated": snap["repeated"], "seconds": round(seconds, 3),
            "records_per_s": round(rate, 1)}


def serve_on(url: str, linger: float | None, signals: Signals) -> None:
    """The input has ended: the page says so and stays up until `q`, a signal or --linger."""
    until = "q or Ctrl-C ends it" + (f"; it ends by itself in {linger:g} s" if linger is not None
                                     else " (--linger S would end it by itself)")
    say("watch", f"input ended; still serving {url}: {until}")
    deadline = None if linger is None else time.monotonic() + linger
    with Keys() as keys, signals.blocking():
        while deadline is None or time.monotonic() < deadline:
            wait = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
            if keys.quit_within(wait):
                return


def live_screen(reader: Reader, signals: Signals) -> bool:
    """Redraw until the input ends, `q` or a signal (True if `q`); the last frame is drawn after
    the loop."""
    def frame(width: int, height: int) -> RenderableType:
        if reader.done.is_set() or reader.halted:
            return render(reader.snapshot(), width, height, "input ended" if reader.done.is_set() else "")
        return render(reader.snapshot(), width, height, "q quits")

    with LiveScreen(sys.stdout, frame, colored(sys.stdout)) as screen, Keys() as keys:
        try:
            with signals.blocking():
                while not reader.done.is_set():
                    screen.draw()
                    if keys.quit_within(REDRAW_S):
                        return True
        finally:
            reader.halt()
    return False


def print_summary(snap: dict[str, Any], as_json: bool, output_spec: str) -> None:
    to_file = output_spec != "-"
    with open(output_spec, "w") if to_file else contextlib.nullcontext(sys.stdout) as out:
        if as_json:
            out.write(orjson.dumps(snap).decode() + "\n")
            out.flush()
            return
        color = not to_file and colored(out)
        width = 120 if to_file else max(100, Console().width)
        Console(file=out, no_color=not color, highlight=False, width=width).print(render(snap))


# watch writes a summary, never records: its -o takes '-' or a file only.
for _param in watch.params:
    if _param.name == "output_spec" and isinstance(_param, click.Option):
        _param.help = "Where the --once summary goes: '-' (stdout) or a file."
