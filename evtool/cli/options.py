"""Option bundles shared by the subcommands. Every option can also be set in the environment:
EVTOOL_<COMMAND>_<OPTION>, so one variable never redirects every stage of a pipe; only the
settings every stage shares on purpose are global (EVTOOL_AMQP_URL, EVTOOL_PACK,
EVTOOL_CONNECT_TIMEOUT)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import click

from evtool.core.secrets import redact
from evtool.transports.factory import is_amqp_url

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
F = Callable[..., Any]


SHARED = ("AMQP_URL", "PACK", "CONNECT_TIMEOUT")


def _env_name(decls: Any) -> str:
    long = str(next(d for d in decls if d.startswith("--"))).split("/")[0]
    return long[2:].upper().replace("-", "_")


def option(*decls: str, **kw: Any) -> Callable[[F], F]:
    """click.option with an environment variable shown in --help (scoped by `scope_envvars`)."""
    kw.setdefault("envvar", "EVTOOL_" + _env_name(decls))
    kw.setdefault("show_envvar", True)
    return click.option(*decls, **kw)


def unscoped_envvars(command: click.Command, environ: Mapping[str, str]) -> list[str]:
    """Variables set under an option's unscoped name (EVTOOL_OUTPUT), which this command does not
    read (it reads EVTOOL_VALIDATE_OUTPUT): each as a line saying which name it reads."""
    lines = []
    for param in command.params:
        if isinstance(param, click.Option) and isinstance(param.envvar, str):
            bare = "EVTOOL_" + _env_name(param.opts + param.secondary_opts)
            if bare != param.envvar and bare in environ and param.envvar not in environ:
                lines.append(f"{bare} is set but not read: {command.name} reads {param.envvar}")
    return lines


def amqp_url_only(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A broker URL of another scheme (http://) must not fall back to a default vhost."""
    if not is_amqp_url(value):
        raise click.BadParameter(f"{redact(value)!r} is not an amqp:// or amqps:// URL", param=param)
    return value


def spec_scheme(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """-i/-o/--dead-letter: a URL of a scheme evtool does not speak is a mistake, not a file name."""
    if value is not None and "://" in value and not is_amqp_url(value):
        raise click.BadParameter(f"{redact(value)!r}: evtool speaks amqp:// and amqps:// only",
                                 param=param)
    if value is not None and is_amqp_url(value):
        from evtool.transports.amqp.topology import names_problem

        problem = names_problem(value)
        if problem is not None:
            shown = redact(value)
            shown = shown if len(shown) <= 100 else shown[:97] + "..."
            raise click.BadParameter(f"{shown!r}: {problem}", param=param)
    return value


def scope_envvars(command: click.Command) -> click.Command:
    """EVTOOL_<COMMAND>_<OPTION> for the command's own options; the shared ones stay global."""
    for param in command.params:
        if isinstance(param, click.Option) and isinstance(param.envvar, str) \
                and param.envvar.startswith("EVTOOL_"):
            name = _env_name(param.opts + param.secondary_opts)
            param.envvar = f"EVTOOL_{name}" if name in SHARED else \
                f"EVTOOL_{(command.name or '').upper()}_{name}"
    return command


def compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


class Finite(click.FloatRange):
    """A number within a range that --help shows; nan and the infinities are never one."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return float(number)


# Durations end well inside the years evtool can write (a window of 31 years at the most).
LONGEST = 1e9
SECONDS = Finite(min=0, max=LONGEST, min_open=True)
SECONDS_OR_ZERO = Finite(min=0, max=LONGEST)
FRACTION = Finite(min=0, max=1)


input_option = option(
    "-i", "--input", "input_spec", default="-", show_default=True, metavar="SPEC",
    help="Where to read: '-' (stdin), a file, 'amqp', or an amqp:// URL.", callback=spec_scheme,
)
output_option = option(
    "-o", "--output", "output_spec", default="-", show_default=True, metavar="SPEC",
    help="Where to write: '-' (stdout), a file, 'amqp', or an amqp:// URL.", callback=spec_scheme,
)
amqp_option = option(
    "--amqp-url", default=DEFAULT_AMQP_URL, show_default=False, metavar="URL",
    help="Broker for 'amqp' specs [default: amqp://guest:***@127.0.0.1:5672/%2F].",
    callback=amqp_url_only,
)
quiet_option = option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")


def _summary_json(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    from evtool.runtime.loop import SUMMARY

    SUMMARY.json = SUMMARY.json or value


summary_json_option = option("--summary-json", is_flag=True, expose_value=False, callback=_summary_json,
                             help="The summary on stderr as one JSON object (counts, seconds, rate).")
connect_timeout_option = option(
    "--connect-timeout", type=Finite(min=0, max=86400, min_open=True), default=30.0, show_default=True,
    help="Give up (exit 1) when the broker stays unreachable this long; until then, retry.",
)
prefetch_option = option(
    "--prefetch", type=click.IntRange(min=1), default=5000, show_default=True,
    help="Unacked broker messages in flight to this stage (raised automatically if it holds acks).",
)
pack_option = option(
    "--pack", "pack_spec", default="evtool", show_default=True, metavar="NAME|DIR",
    help="The pipeline's vocabulary: a built-in pack (evtool, lab3, cloudevents) or a pack folder "
         "(see evtool --list-packs).",
)
output_options = compose(output_option, amqp_option, connect_timeout_option, quiet_option,
                         summary_json_option, pack_option)
files_argument = click.argument("files", nargs=-1, metavar="[FILE]...")


def input_of(input_spec: str, files: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """FILE arguments (read one after another, as jq takes them) or -i SPEC, not both."""
    if not files:
        return input_spec, ()
    if input_spec != "-":
        raise click.UsageError(f"give the input as FILE arguments or as -i {input_spec}, not both")
    for path in files:
        if path == "amqp" or "://" in path:
            raise click.UsageError(f"FILE arguments are files: for {redact(path)}, use -i")
    if "-" in files and len(files) > 1:
        raise click.UsageError("'-' (standard input) cannot be one of several FILE arguments")
    return files[0], files if len(files) > 1 else ()


io_options = compose(files_argument, input_option, output_option, amqp_option, connect_timeout_option,
                     prefetch_option, quiet_option, summary_json_option, pack_option)

dead_letter_option = option(
    "--dead-letter", "dead_letter_spec", default=None, metavar="SPEC", callback=spec_scheme,
    help="Where rejects go [default: the output stream; on the broker, the pack's dead-letter "
         "exchange].",
)

dead_letter_body_option = option(
    "--dead-letter-body", type=click.Choice(["record", "raw"]), default=None,
    help="record: a dead-letter record (reason, error, the line); raw: the rejected bytes as they "
         "came, nothing added (on the broker the reason, error and stage go in x-evtool-* "
         "headers). raw needs a --dead-letter of its own or the broker. [default: the pack's "
         "wire.json, else record]",
)


def max_line_option_of(default: int) -> Callable[[F], F]:
    return option(
        "--max-line-bytes", type=click.IntRange(min=64), default=default, show_default=True,
        help="Longer lines are dead letters (reason too_large), never held whole in memory.",
    )


# validate guards raw input (1 MiB, as the contract says); the stages after it read derived
# records, and a window record lists every event id it counted: 50,000 ids are about 2 MB.
max_line_option = max_line_option_of(1 << 20)
derived_max_line_option = max_line_option_of(64 << 20)




metrics_port_option = option(
    "--metrics-port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
    help="Serve Prometheus metrics of this stage on 127.0.0.1:PORT/metrics.",
)



def filter_options(max_line: Callable[[F], F]) -> Callable[[F], F]:
    """What validate, aggregate and audit each take: I/O, dead letters, a line cap, metrics."""
    return compose(io_options, dead_letter_option, dead_letter_body_option, max_line, metrics_port_option)


partitions_option = option(
    "--partitions", type=click.IntRange(min=1), default=1, show_default=True,
    help="Aggregate partitions on the broker (regions are hashed to partitions): set it the same "
         "on validate and every aggregate.",
)
