"""evtool replay: stored events back out, in event-time order; --verify recomputes metrics."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import click

from evtool.cli.gen import start_micros
from evtool.cli.options import Finite, option, output_options
from evtool.cli.packs import pack_from_options
from evtool.console import say
from evtool.core.instant import MICROS, iso_us
from evtool.core.pacing import Pacer
from evtool.core.pack import Pack
from evtool.core.printable import printable
from evtool.core.roles import Roles
from evtool.runtime.loop import ExitStatus, say_summary, silence_stdout
from evtool.runtime.produce import pump
from evtool.runtime.progress import Meter, counting, on_terminal
from evtool.runtime.stage import fail, open_output
from evtool.schemas import builtin_packs, load_pack
from evtool.store import Store, StoreError, open_store
from evtool.store.foreign import ForeignRecord, foreign_kind
from evtool.store.recorded import as_text, recorded, shown
from evtool.store.replay import (
    Filters,
    Unreadable,
    count_events,
    has_metric,
    metric_count,
    stored_events,
    time_span,
    verify,
)


@click.command()
@output_options
@option("--db", default="audit.db", show_default=True, metavar="PATH",
        help="The audit database: an SQLite file or a postgresql:// URL.")
@option("--metric-id", default=None, metavar="ID", help="Only the events that made this metric.")
@option("--since", default=None, metavar="ISO", help="Only events at or after this time.")
@option("--until", default=None, metavar="ISO", help="Only events before this time.")
@option("--source", default=None, help="Only events of this source.")
@option("--region", default=None, help="Only events of this region.")
@option("--speed", type=Finite(min=0, max=1e9, min_open=True), default=None,
        help="Pace by event time, X times faster than real [default: as fast as possible].")
@option("--verify", "verify_metrics", is_flag=True,
        help="Recompute every stored metric; exit 1 on any difference.")
def replay(output_spec: str, amqp_url: str, connect_timeout: float, quiet: bool, pack_spec: str, db: str,
           metric_id: str | None,
           since: str | None, until: str | None, source: str | None, region: str | None,
           speed: float | None, verify_metrics: bool) -> ExitStatus:
    """Emit stored events exactly as audit received them, ordered by (timestamp, event_id).

    \b
    Example:
      evtool replay --db audit.db | evtool validate | evtool aggregate     # recompute
      evtool replay --db audit.db --metric-id 6f1c... | jq .event_id       # what made a metric
      evtool replay --db audit.db --since 2026-11-26T13:00:00Z --speed 10  # an incident, 10x
      evtool replay --db audit.db --verify
    """
    pack = pack_from_options(pack_spec)
    filters = Filters(
        since_us=start_micros(since, "--since") if since else None,
        until_us=start_micros(until, "--until") if until else None,
        source=source, region=region, metric_id=metric_id, roles=pack.roles)
    found = foreign_record(db, pack)
    if found is None and _is_text(db):
        raise click.UsageError(f"--db {db} is neither an audit database nor a log a pack's wire.json "
                               "reads (such as lab3's audit_log.jsonl); to replay NDJSON, give it to "
                               "a stage's -i")
    if found is not None:
        return replay_foreign(found, filters, verify_metrics, output_spec, amqp_url,
                              connect_timeout, speed, quiet)
    try:
        store = open_store(db, readonly=True)
    except StoreError as exc:
        fail("replay", str(exc))
    roles = reading_roles(store, pack, quiet)
    filters = replace(filters, roles=roles)
    if verify_metrics:
        return run_verify(store, quiet, roles)
    if metric_id is not None:
        known(store, db, metric_id)
    if (since or until) and not quiet:
        hint_when_empty(store, filters)
    sink = open_output("replay", output_spec, amqp_url, connect_timeout, pack, keeps={"--db": db})
    unreadable = Unreadable()
    items = stored_events(store, filters, unreadable)
    pacer = Pacer(time.monotonic, speed) if speed else None
    progress = counting("replay", count_events(store, filters) if on_terminal() else None, quiet)
    try:
        status = pump("replay", items, sink, pacer, quiet, progress=progress)
    except StoreError as exc:
        fail("replay", str(exc))
    if unreadable.rows:
        say("replay", f"{unreadable.rows} stored events not replayed: their ts_us is no integer or "
            "their raw no text, which audit never writes (edited by hand?)")
    return status


def reading_roles(store: Store, pack: Pack, quiet: bool) -> Roles:
    """The roles audit recorded it read the events by, else the pack's; said where they are not
    the pack's."""
    held, records = recorded(store)
    if held is None:
        if records and not quiet:
            say("replay", f"{store.path}'s evtool_roles cannot be read (edited by hand?): its events "
                          f"are read by {pack.name}'s roles")
        return pack.roles
    if as_text(held) != as_text(pack.roles) and not quiet:
        say("replay", f"{store.path}'s events are read by the roles audit recorded ({shown(held)}), "
                      f"not by {pack.name}'s")
    return held


def known(store: Store, db: str, metric_id: str) -> None:
    """An id that names no metric is a mistake to say, not an empty answer."""
    if has_metric(store, metric_id):
        return
    count = metric_count(store)
    raise click.UsageError(f"--metric-id {metric_id!r}: no such metric in {db} (it holds {count}; "
                           f"`SELECT metric_id FROM metrics_out` lists them)")


def hint_when_empty(store: Store, filters: Filters) -> None:
    """A time range that misses every stored event says where the events are."""
    if count_events(store, filters):
        return
    span = time_span(store)
    held = (f"its events run from {iso_us(span[0])} to {iso_us(span[1])}" if span is not None
            else "it holds no events")
    say("replay", f"no stored event matches --since/--until and the other filters; {held}")


def _is_text(path: str) -> bool:
    """A file that starts like JSON text, which no database does."""
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] in (b"{", b"[")
    except OSError:
        return False


def foreign_record(db: str, pack: Pack) -> ForeignRecord | None:
    """Another pipeline's audit record at `db`, as the given pack's wire.json or else a built-in
    pack's reads it; None for an evtool audit database (or nothing readable)."""
    if db.startswith(("postgresql://", "postgres://")):
        return None
    for candidate in (pack, *(load_pack(name) for name in builtin_packs() if name != pack.name)):
        kind = foreign_kind(db, candidate)
        if kind is not None:
            return ForeignRecord(db, kind, candidate)
    return None


def replay_foreign(record: ForeignRecord, filters: Filters, verify_metrics: bool, output_spec: str,
                   amqp_url: str, connect_timeout: float, speed: float | None,
                   quiet: bool) -> ExitStatus:
    """Another pipeline's own record: said as such, replayed with the same filters, published
    as its pack's wire says."""
    if verify_metrics:
        raise click.UsageError(f"{record.path} is {record.shown}: its metrics have no "
                               "window to recompute (--verify needs an evtool audit database)")
    say("replay", f"reading {record.shown} at {record.path}")
    sink = open_output("replay", output_spec, amqp_url, connect_timeout, record.pack,
                       keeps={"--db": record.path})
    pacer = Pacer(time.monotonic, speed) if speed else None
    items = ((at / MICROS, line) for at, line in record.events(filters))
    try:
        status = pump("replay", items, sink, pacer, quiet)
    except StoreError as exc:
        fail("replay", str(exc))
    if record.skipped:
        say("replay", f"{record.skipped} of {record.pack.name}'s records skipped: not events "
                      "evtool can read (text that is no UTF-8, JSON that is none) or place "
                      "(no time or id)")
    return status


def run_verify(store: Store, quiet: bool, roles: Roles) -> ExitStatus:
    meter: Meter | None = None

    def progress(done: int, total: int) -> None:
        nonlocal meter
        if meter is None:
            meter = Meter("replay --verify (events read)", total)
        meter.tick(done)

    try:
        try:
            verdict = verify(store, progress if not quiet and on_terminal() else None, roles)
        finally:
            if meter is not None:
                meter.close()
        for line in verdict.differences:
            click.echo(printable(line))
        for line in verdict.unchecked:
            click.echo(printable(f"could not check: {line}"))
        sys.stdout.flush()
        total = metric_count(store)
    except StoreError as exc:
        say("replay", f"error: {exc}")
        return ExitStatus.FAILURE
    except OSError as exc:
        say("replay", f"error: cannot write the verdict: {exc.strerror}")
        silence_stdout()
        return ExitStatus.FAILURE
    if not quiet:
        say_summary("replay", f"verify: {verdict.checked} of {total} metrics checked, "
                              f"{len(verdict.differences)} differences, "
                              f"{len(verdict.unchecked)} could not be checked",
                    {"metrics": total, "checked": verdict.checked,
                     "differences": len(verdict.differences), "unchecked": len(verdict.unchecked)})
    return ExitStatus.FAILURE if verdict.differences else ExitStatus.OK
