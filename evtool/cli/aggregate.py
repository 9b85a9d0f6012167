"""evtool aggregate: deduplicated event counts in event-time tumbling windows."""

from __future__ import annotations

import click

from evtool.cli.options import (
    SECONDS,
    SECONDS_OR_ZERO,
    Finite,
    derived_max_line_option,
    filter_options,
    input_of,
    option,
    partitions_option,
)
from evtool.cli.packs import pack_from_options
from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.anomaly import AlertConfig
from evtool.core.derived import DerivedChecker
from evtool.core.fields import LineFields, ParsedFields
from evtool.core.linereader import field_reader
from evtool.core.stats import Stats
from evtool.runtime.ahead import Ahead
from evtool.runtime.loop import ExitStatus
from evtool.runtime.stage import run_stage
from evtool.schemas import derived_schemas
from evtool.transports.backoff import UPSTREAM_GRACE


@click.command()
@filter_options(derived_max_line_option)
@partitions_option
@option("--partition", type=click.IntRange(min=0), default=0, show_default=True,
        help="Which partition this instance counts (0 .. --partitions - 1).")
@option("--window", type=SECONDS, default=5.0, show_default=True,
        help="Window size in seconds of event time (tumbling, aligned to the epoch).")
@option("--lateness", type=SECONDS_OR_ZERO, default=0.0, show_default=True,
        help="Seconds the watermark trails the newest event time.")
@option("--forward", is_flag=True, help="Also pass counted events on (duplicates are absorbed).")
@option("--dedupe-horizon", type=SECONDS, default=86400.0, show_default=True,
        help="Seconds of event time an event_id is remembered.")
@option("--idle-flush", type=SECONDS, default=None,
        help="Close open windows after this many wall seconds with no input (a broker outage, "
             f"and the {UPSTREAM_GRACE:g} s after it, are not quiet) [default: 2x window].")
@option("--alert-threshold", type=Finite(min=0, max=1e6, min_open=True), default=5.0,
        show_default=True,
        help="Alert when a (region, source) count stands this many deviations above its baseline.")
@option("--alert-min-count", type=click.IntRange(min=1), default=10, show_default=True,
        help="... and at least this many events above it.")
@option("--no-alerts", is_flag=True, help="Do not look for anomalies.")
@option("--max-ahead", type=SECONDS_OR_ZERO, default=86400.0, show_default=True,
        help="An event this many seconds of event time past the newest one so far is a dead letter "
             "(reason future) and moves nothing, so one bad clock cannot close every window; 0: off.")
def aggregate(
    files: tuple[str, ...], input_spec: str, output_spec: str, amqp_url: str, connect_timeout: float,
    prefetch: int,
    quiet: bool, pack_spec: str, dead_letter_spec: str | None, dead_letter_body: str,
    max_line_bytes: int, metrics_port: int | None, partitions: int, partition: int, window: float,
    lateness: float, forward: bool,
    dedupe_horizon: float,
    idle_flush: float | None, alert_threshold: float, alert_min_count: int, no_alerts: bool,
    max_ahead: float,
) -> ExitStatus:
    """Count events per region and source in event-time windows.

    Emits one `window` record per closed window, one `metric` per region in it, and an `alert`
    for each (region, source) whose count stands far above its recent baseline. A window
    closes when the watermark (newest event time minus --lateness) reaches its end; an event for
    a closed window is a dead letter with reason `late`; a repeated event_id is dropped and
    counted as a duplicate. At end of input every open window is emitted.

    \b
    Example:
      evtool gen --count 10000 --duplicates 0.02 --fast | evtool validate \\
        | evtool aggregate --window 10 --lateness 2 | jq 'select(.kind=="window") | .total'
    """
    input_spec, files = input_of(input_spec, files)
    if partition >= partitions:
        raise click.BadParameter(f"must be below --partitions ({partitions})", param_hint="--partition")
    pack = pack_from_options(pack_spec)
    alerts = None if no_alerts else AlertConfig(threshold=alert_threshold, min_excess=alert_min_count)
    cfg = AggregateConfig(window=window, lateness=lateness, forward=forward,
                          dedupe_horizon=dedupe_horizon, alerts=alerts, max_ahead=max_ahead,
                          wire=pack.wire, roles=pack.roles,
                          partition=partition if partitions > 1 else None)
    reader = field_reader(pack)
    # reading lines needs no state: a child reads the next batches while this counts
    ahead = Ahead(LineFields(reader) if reader is not None else ParsedFields(pack.roles, pack.wire))
    checker = DerivedChecker(derived_schemas(), pack.wire)
    return run_stage("aggregate", lambda: AggregateStage(cfg, Stats(), checker, reader, ahead),
              input_spec=input_spec, input_files=files,
              output_spec=output_spec, dead_letter_spec=dead_letter_spec,
              dead_letter_body=dead_letter_body, amqp_url=amqp_url,
              quiet=quiet, max_line_bytes=max_line_bytes,
              connect_timeout=connect_timeout, prefetch=prefetch,
              metrics_port=metrics_port, partitions=partitions, partition=partition,
              idle_after=idle_flush if idle_flush is not None else 2 * window,
              upstream_grace=True, pack=pack, wrap_source=ahead.wrap)
