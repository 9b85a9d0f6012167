"""Opening a stage's sides from its options, with failures as clear one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from evtool.cli.run import ExitStatus, Outputs, Processor, run_filter, say
from evtool.transports.base import Source, TransportError
from evtool.transports.spec import Endpoint, is_amqp, open_sink, open_source


def fail(stage: str, message: str) -> None:
    say(stage, f"error: {message}")
    sys.exit(ExitStatus.FAILURE)


def dead_letter_endpoint(stage: str, spec: str | None, output_spec: str,
                         amqp_url: str) -> Endpoint | None:
    """None when rejects share the output stream: the default on pipes and files. On the broker
    they default to the deadletter.validation queue."""
    if spec is None:
        return Endpoint("amqp", amqp_url, "dead", stage) if is_amqp(output_spec) else None
    if spec == output_spec and not is_amqp(spec):
        return None
    return Endpoint(spec, amqp_url, "dead", stage)


def run_stage(
    stage: str,
    make: Callable[[], Processor],
    *,
    input_spec: str,
    output_spec: str,
    dead_letter_spec: str | None,
    amqp_url: str,
    quiet: bool,
    max_line_bytes: int,
    idle_after: float | None = None,
) -> None:
    """Build the processor (bad settings are usage errors), open both sides, run, exit."""
    try:
        processor = make()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    source: Source | None = None
    try:
        source = open_source(Endpoint(input_spec, amqp_url, "in", stage), max_line_bytes)
        sink = open_sink(Endpoint(output_spec, amqp_url, "out", stage))
        dead = dead_letter_endpoint(stage, dead_letter_spec, output_spec, amqp_url)
        outputs = Outputs(sink, open_sink(dead) if dead else None, processor.stats)
    except TransportError as exc:
        if source is not None:
            source.close()
        fail(stage, str(exc))
        return
    status = run_filter(stage, processor, source, outputs, quiet=quiet,
                        max_line_bytes=max_line_bytes, idle_after=idle_after)
    sys.exit(status)
