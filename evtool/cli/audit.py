"""evtool audit: store every record in SQLite, forward each batch once it has committed."""

from __future__ import annotations

from typing import BinaryIO

import click

from evtool.cli.options import Finite, derived_max_line_option, filter_options, input_of, option
from evtool.cli.packs import pack_from_options
from evtool.console import say
from evtool.core.derived import DerivedChecker
from evtool.core.linereader import field_reader
from evtool.core.stats import Stats
from evtool.runtime.loop import ExitStatus
from evtool.runtime.stage import fail, inputs, refuse_overwriting, run_stage
from evtool.schemas import derived_schemas
from evtool.store import StoreError, open_store, open_writer
from evtool.store.audit import AuditStage
from evtool.store.recorded import record


@click.command()
@filter_options(derived_max_line_option)
@option("--db", default="audit.db", show_default=True, metavar="PATH",
        help="SQLite file, or a postgresql:// URL.")
@option("--jsonl", default=None, metavar="PATH", help="Also append every stored record to this log.")
@option("--batch-records", type=click.IntRange(min=1), default=100000, show_default=True,
        help="Commit after this many rows ...")
@option("--batch-seconds", type=Finite(min=0, max=3600, min_open=True), default=1.0, show_default=True,
        help="... or after this many seconds, whichever comes first.")
def audit(files: tuple[str, ...], input_spec: str, output_spec: str, amqp_url: str, connect_timeout: float,
          prefetch: int, quiet: bool, pack_spec: str,
          dead_letter_spec: str | None, dead_letter_body: str, max_line_bytes: int,
          metrics_port: int | None, db: str,
          jsonl: str | None,
          batch_records: int, batch_seconds: float) -> ExitStatus:
    """Store events, metrics (with their trace), windows, alerts and dead letters; forward all.

    Inserts are idempotent on the record ids: the same record twice leaves one row. A batch goes
    downstream only after its transaction has committed, so nothing that left audit is missing
    from the database.

    \b
    Example:
      evtool gen --count 10000 --fast | evtool validate | evtool aggregate --forward \\
        | evtool audit --db audit.db > /dev/null
      sqlite3 audit.db "SELECT event_id FROM trace WHERE metric_id = '...'"
    """
    input_spec, files = input_of(input_spec, files)
    pack = pack_from_options(pack_spec)
    keeps = {"--db": db}
    refuse_overwriting({"--output": output_spec, "--dead-letter": dead_letter_spec, "--jsonl": jsonl},
                       {"input": input_spec, **inputs(files), **keeps})
    try:
        recorder = open_store(db)
        try:
            record(recorder, pack.roles)
        finally:
            recorder.close()
        store = open_writer(db)
    except StoreError as exc:
        fail("audit", str(exc))
    log: BinaryIO | None = None
    if jsonl is not None:
        try:
            log = open_log(jsonl)
        except OSError as exc:
            fail("audit", f"cannot open {jsonl}: {exc.strerror}")
    checker = DerivedChecker(derived_schemas(), pack.wire)
    stage = AuditStage(store, Stats(), checker, batch_records=batch_records,
                       batch_seconds=batch_seconds, jsonl=log, wire=pack.wire, overlap=True,
                       reader=field_reader(pack), roles=pack.roles)
    try:
        return run_stage("audit", lambda: stage,
                  input_spec=input_spec, input_files=files, output_spec=output_spec,
                  dead_letter_spec=dead_letter_spec, dead_letter_body=dead_letter_body,
                  amqp_url=amqp_url, quiet=quiet, max_line_bytes=max_line_bytes,
                  connect_timeout=connect_timeout, prefetch=prefetch,
                  metrics_port=metrics_port, idle_after=batch_seconds,
                  also_writes={"--jsonl": jsonl} if jsonl else None, pack=pack, keeps=keeps)
    finally:
        stage.close()
        store.close()
        if log is not None:
            log.close()


def open_log(path: str) -> BinaryIO:
    """The log opened for appending; a last line torn by an earlier failure (a full disk) is
    ended first, so the next record starts a line of its own instead of gluing onto it."""
    log = open(path, "ab")  # noqa: SIM115 - closed by the caller
    if log.tell() > 0:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"
        if torn:
            log.write(b"\n")
            say("audit", f"{path} ended in a torn line (an earlier run failed mid-write): it is left "
                         "as a line of its own")
    return log
