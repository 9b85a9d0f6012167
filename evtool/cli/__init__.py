"""The `evtool` command: one group, one thin module per subcommand."""

from __future__ import annotations

import errno
import importlib
import os
import sys
import traceback

import click

from evtool import __version__
from evtool.cli.options import scope_envvars, unscoped_envvars
from evtool.cli.packs import list_packs, show_pack
from evtool.console import say
from evtool.core.secrets import redact
from evtool.runtime.loop import ExitStatus, Interrupted, StageFailed, install_early_signals, silence_stdout
from evtool.tuning import tune_runtime

SUBCOMMANDS = ("gen", "validate", "aggregate", "audit", "replay", "watch", "learn")


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it runs: every stage starts without the others'."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        command = getattr(importlib.import_module(f"evtool.cli.{cmd_name}"), cmd_name)
        assert isinstance(command, click.Command)
        return scope_envvars(command)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            for line in unscoped_envvars(command, os.environ):
                sys.stderr.write(f"evtool {name}: warning: {line}\n")
        return name, command, rest


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="evtool")
@click.option("--list-packs", is_flag=True, expose_value=False, is_eager=True, callback=list_packs,
              help="List the built-in packs and exit.")
@click.option("--show-pack", metavar="NAME|DIR", expose_value=False, is_eager=True,
              callback=show_pack, help="Show what a pack holds (sources, regions, fields) and exit.")
def cli() -> None:
    """Composable filters for event pipelines, over pipes or RabbitMQ.

    \b
    evtool gen --count 1000 --seed 1 --fast | evtool validate | evtool aggregate
    """


def main() -> None:
    """The one place evtool exits: a command returns its status; click's errors exit 2, a stage
    that cannot go on 1, a signal 130/143; anything unexpected is one line on stderr, exit 1."""
    tune_runtime()
    install_early_signals()
    sys.exit(run(sys.argv[1:]))


def run(args: list[str]) -> int:
    """Run one evtool command line and give its exit status (tests call this in-process)."""
    try:
        status = cli.main(args, prog_name="evtool", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        return ExitStatus.INTERRUPTED
    except StageFailed as exc:
        say(exc.stage, f"error: {exc.message}")
        return ExitStatus.FAILURE
    except Interrupted as stop:
        return stop.status
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            return internal_error(exc)
        silence_stdout()                       # `evtool --help | head`: the reader left
        return ExitStatus.FAILURE
    except Exception as exc:  # the last line of defence against a traceback
        return internal_error(exc)
    return int(status) if isinstance(status, int) else 0


def internal_error(exc: BaseException) -> int:
    if os.environ.get("EVTOOL_DEBUG"):
        traceback.print_exc()
    sys.stderr.write(redact(f"evtool: internal error: {type(exc).__name__}: {exc}") + "\n")
    return ExitStatus.FAILURE
