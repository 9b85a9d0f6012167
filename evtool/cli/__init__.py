"""The `evtool` command: one group, one thin module per subcommand."""

from __future__ import annotations

import os
import sys
import traceback

import click

from evtool import __version__
from evtool.cli.aggregate import aggregate
from evtool.cli.audit import audit
from evtool.cli.gen import gen
from evtool.cli.replay import replay
from evtool.cli.tuning import hide_secrets_from_title, tune_runtime
from evtool.cli.validate import validate
from evtool.cli.watch import watch


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="evtool")
def cli() -> None:
    """Composable filters for event pipelines, over pipes or RabbitMQ.

    \b
    evtool gen --count 1000 --seed 1 | evtool validate | evtool aggregate
    """


for command in (gen, validate, aggregate, audit, replay, watch):
    cli.add_command(command)


def main() -> None:
    """Entry point: click's errors exit 2; anything unexpected is one line on stderr, exit 1."""
    tune_runtime()
    hide_secrets_from_title(sys.argv)
    try:
        cli.main(prog_name="evtool")
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence against a traceback
        if os.environ.get("EVTOOL_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(f"evtool: internal error: {type(exc).__name__}: {exc}\n")
        sys.exit(1)
