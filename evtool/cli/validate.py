"""evtool validate: events in, valid events out, everything else as dead letters."""

from __future__ import annotations

import click

from evtool.cli.common import run_stage
from evtool.cli.options import filter_options, max_line_option, option, partitions_option
from evtool.core.model import REGIONS
from evtool.core.stats import Stats
from evtool.core.validation import EventValidator, ValidateStage
from evtool.schemas import builtin_schemas, schema_dir


@click.command()
@filter_options(max_line_option)
@partitions_option
@option("--schema-dir", "schema_dir_path", type=click.Path(file_okay=False), default=None,
        help="Read DIR/<source>.json as the payload schema of <source> (adds or replaces).")
@option("--regions", default=None, metavar="LIST",
        help="Comma-separated allowed regions [default: the 16 regions of Chile].")
def validate(
    input_spec: str, output_spec: str, amqp_url: str, connect_timeout: float, prefetch: int,
    quiet: bool, dead_letter_spec: str | None,
    max_line_bytes: int, metrics_port: int | None, partitions: int,
    schema_dir_path: str | None, regions: str | None,
) -> None:
    """Check events against the contract's JSON Schemas.

    Valid events pass byte for byte; records with a `kind` pass unchanged; anything else becomes
    a dead letter with its reason (json, encoding, too_large, schema), an error naming the field
    and rule, and the raw line.

    \b
    Example:
      evtool gen --count 1000 --invalid 0.05 --seed 7 | evtool validate --dead-letter bad.ndjson
      evtool validate -i events.ndjson --schema-dir my-schemas/ --regions north,south
    """
    def make() -> ValidateStage:
        envelope, payloads = builtin_schemas()
        shipped = set(payloads)
        if schema_dir_path:
            custom = schema_dir(schema_dir_path)
            payloads.update(custom)
            shipped -= set(custom)
        allowed = [r.strip() for r in regions.split(",") if r.strip()] if regions else REGIONS
        if not allowed:
            raise ValueError("--regions: give at least one region")
        validator = EventValidator(envelope, payloads, allowed, shipped)
        return ValidateStage(validator, Stats(), max_line_bytes)

    run_stage("validate", make, input_spec=input_spec, output_spec=output_spec,
              dead_letter_spec=dead_letter_spec, amqp_url=amqp_url, quiet=quiet,
              max_line_bytes=max_line_bytes, connect_timeout=connect_timeout, prefetch=prefetch,
              metrics_port=metrics_port, partitions=partitions)
