"""evtool validate: events in, valid events out, everything else as dead letters."""

from __future__ import annotations

import click

from evtool.cli.options import (
    filter_options,
    input_of,
    max_line_option,
    option,
    partitions_option,
)
from evtool.cli.packs import pack_from_options
from evtool.core.derived import DerivedChecker
from evtool.core.stats import Stats
from evtool.core.validation import EventValidator, ValidateStage
from evtool.runtime.loop import ExitStatus
from evtool.runtime.stage import run_stage
from evtool.schemas import derived_schemas


@click.command()
@filter_options(max_line_option)
@partitions_option
@option("--schema-dir", "schema_dir_path", type=click.Path(file_okay=False), default=None,
        help="Read DIR/<source>.json as the payload schema of <source>, over the pack's "
             "(adds or replaces).")
@option("--regions", default=None, metavar="LIST",
        help="Comma-separated allowed regions, replacing the pack's list.")
def validate(
    files: tuple[str, ...], input_spec: str, output_spec: str, amqp_url: str, connect_timeout: float,
    prefetch: int,
    quiet: bool, dead_letter_spec: str | None, dead_letter_body: str,
    max_line_bytes: int, metrics_port: int | None, partitions: int, pack_spec: str,
    schema_dir_path: str | None, regions: str | None,
) -> ExitStatus:
    """Check events against a pack's JSON Schemas (default: the evtool pack).

    Valid events pass byte for byte; window, metric, alert and dead-letter records pass once
    they pass their own schemas; other kinds pass unchanged; anything else becomes a dead letter
    with its reason (json, encoding, too_large, schema), an error naming the field and rule,
    and the raw line.

    \b
    Example:
      evtool gen --count 1000 --invalid 0.05 --seed 7 --fast | evtool validate --dead-letter bad.ndjson
      evtool validate -i events.ndjson --schema-dir my-schemas/ --regions north,south
      evtool validate --pack lab3 -i amqp -o amqp
    """
    input_spec, files = input_of(input_spec, files)
    pack = pack_from_options(pack_spec, schema_dir_path, regions)

    def make() -> ValidateStage:
        return ValidateStage(EventValidator(pack), DerivedChecker(derived_schemas(), pack.wire),
                             Stats(), max_line_bytes)

    return run_stage("validate", make, input_spec=input_spec, input_files=files, output_spec=output_spec,
              dead_letter_spec=dead_letter_spec, dead_letter_body=dead_letter_body,
              amqp_url=amqp_url, quiet=quiet,
              max_line_bytes=max_line_bytes, connect_timeout=connect_timeout, prefetch=prefetch,
              metrics_port=metrics_port, partitions=partitions, pack=pack)
