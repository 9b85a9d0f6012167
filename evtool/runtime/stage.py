"""Opening a stage's sides from its options, with failures as clear one-line errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import NoReturn

import click

from evtool.core.pack import Pack
from evtool.core.records import ORIGINALS
from evtool.runtime.loop import ExitStatus, Outputs, Processor, StageFailed, run_filter
from evtool.runtime.metrics import StageMetrics, reconnects_of
from evtool.runtime.progress import reading
from evtool.transports.base import Sink, Source, TransportError
from evtool.transports.endpoint import Endpoint, Side
from evtool.transports.factory import broker_of, is_amqp, open_sink, open_source


def fail(stage: str, message: str) -> NoReturn:
    raise StageFailed(stage, message)


SQLITE_HEADER = b"SQLite format 3\x00"


def inputs(files: tuple[str, ...]) -> dict[str, str]:
    """Each of several FILE arguments, as a file the stage keeps."""
    return {f"input {path}": path for path in files}


def refuse_overwriting(writes: Mapping[str, str | None], keeps: Mapping[str, str | None]) -> None:
    """A usage error, before anything is opened, when an output names a file the stage keeps
    (its input, its database) or holds an SQLite database, which no evtool output ever is."""
    for option_name, path in writes.items():
        if not _a_file(path):
            continue
        assert path is not None
        for kept_option, kept in keeps.items():
            if _a_file(kept) and _same_file(path, kept or ""):
                what = "what this stage reads" if kept_option == "input" else "it"
                raise click.UsageError(f"{option_name} {path} is the {kept_option} file: writing "
                                       f"it would destroy {what}")
        if _holds_sqlite(path):
            raise click.UsageError(f"{option_name} {path} holds an SQLite database: evtool never "
                                   "writes its output over one")


def _a_file(spec: str | None) -> bool:
    return bool(spec) and spec != "-" and not is_amqp(spec or "") and "://" not in (spec or "")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _holds_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def open_output(stage: str, spec: str, amqp_url: str, connect_timeout: float, pack: Pack,
                keeps: Mapping[str, str | None] | None = None) -> Sink:
    """The sink of a stage that only produces (gen, replay); exits 1 with one line if it cannot,
    2 if it would overwrite what it `keeps`."""
    refuse_overwriting({"--output": spec}, keeps or {})
    try:
        return open_sink(Endpoint(spec, amqp_url, Side.OUT, stage, connect_timeout=connect_timeout,
                                  wire=pack.wire, roles=pack.roles))
    except TransportError as exc:
        fail(stage, str(exc))


def dead_letter_endpoint(spec: str | None, output: Endpoint, raw: bool = False) -> Endpoint | None:
    """None when rejects share the output stream: the default on pipes and files. On the broker
    they default to the deadletter.validation queue, on the broker and vhost of the output.
    `raw`: the rejected bytes as they came, which cannot share a stream of records."""
    if spec is None:
        if not is_amqp(output.spec):
            if raw:
                raise click.UsageError("--dead-letter-body raw: give rejects a --dead-letter of "
                                       "their own (raw bytes would mix into the output's records)")
            return None
        return replace(output, spec="amqp", amqp_url=broker_of(output), role=Side.DEAD, raw_body=raw)
    if spec == output.spec and not is_amqp(spec):
        if raw:
            raise click.UsageError("--dead-letter-body raw: the dead letters cannot share the output")
        return None
    return replace(output, spec=spec, role=Side.DEAD, raw_body=raw)


def raw_letters(body: str | None, pack: Pack, spec: str | None, output: Endpoint) -> bool:
    """--dead-letter-body, else the pack's: a pack's raw applies where rejects have a place of
    their own (the broker, or --dead-letter); on a stream shared with records they stay records."""
    if body is not None:
        return body == "raw"
    shared = spec is None and not is_amqp(output.spec)
    return pack.wire.dead_letter_body == "raw" and not shared


def run_stage(
    stage: str,
    make: Callable[[], Processor],
    *,
    input_spec: str,
    output_spec: str,
    dead_letter_spec: str | None,
    pack: Pack,
    dead_letter_body: str | None = None,
    amqp_url: str,
    quiet: bool,
    max_line_bytes: int,
    connect_timeout: float,
    prefetch: int,
    idle_after: float | None = None,
    upstream_grace: bool = False,
    metrics_port: int | None = None,
    partitions: int = 1,
    partition: int = 0,
    also_writes: dict[str, str] | None = None,
    wrap_source: Callable[[Source], Source] | None = None,
    keeps: Mapping[str, str | None] | None = None,
    input_files: tuple[str, ...] = (),
) -> ExitStatus:
    """Build the processor (bad settings are usage errors), open both sides, run to the end.
    `wrap_source` may put the opened source behind another (aggregate reads ahead); no output
    may overwrite the input or a file the stage `keeps`. `upstream_grace`: a broker input
    restored after an outage is not idle until the stages feeding it have had time to come back
    (aggregate, whose idle flush would close windows their events still belong to)."""
    writes = {"--output": output_spec, "--dead-letter": dead_letter_spec or "", **(also_writes or {})}
    refuse_overwriting(writes, {"input": input_spec, **inputs(input_files), **(keeps or {})})
    try:
        processor = make()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    source: Source | None = None
    try:
        inp = Endpoint(input_spec, amqp_url, Side.IN, stage, prefetch, connect_timeout, partitions,
                       partition, pack.wire, input_files, pack.roles,
                       upstream_grace=upstream_grace)
        source = open_source(inp, max_line_bytes)
        if wrap_source is not None:
            source = wrap_source(source)
        for option_name, path in writes.items():
            if path not in ("", "-") and not is_amqp(path) and source.reads_file(path):
                source.close()
                raise click.UsageError(f"{option_name} {path} is the input file: writing it would "
                                       "destroy (or endlessly grow) what this stage reads")
        output = replace(inp, spec=output_spec, role=Side.OUT)
        sink = open_sink(output)
        dead = dead_letter_endpoint(dead_letter_spec, output,
                                    raw_letters(dead_letter_body, pack, dead_letter_spec, output))
        ORIGINALS.keep = dead is not None and dead.raw_body
        outputs = Outputs(sink, open_sink(dead) if dead else None, processor.stats, stage)
    except TransportError as exc:
        if source is not None:
            source.close()
        fail(stage, str(exc))
    on_batch = None
    if metrics_port is not None:
        try:
            metrics = StageMetrics(stage, metrics_port)
        except OSError as exc:
            fail(stage, f"cannot serve metrics on port {metrics_port}: {exc.strerror}")

        def on_batch() -> None:
            metrics.update(processor.stats, reconnects_of(source, outputs.sink, outputs.dead_sink),
                           processor.newest_event_time)

    status = run_filter(stage, processor, source, outputs, quiet=quiet,
                        max_line_bytes=max_line_bytes, idle_after=idle_after, on_batch=on_batch,
                        progress=reading(stage, source.extent(), source.offset, quiet))
    return status
