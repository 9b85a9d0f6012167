"""evtool learn: a pack folder from a sample of someone else's events."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import orjson

from evtool.cli.options import (
    SECONDS_OR_ZERO,
    amqp_option,
    connect_timeout_option,
    files_argument,
    input_of,
    input_option,
    option,
    quiet_option,
)
from evtool.console import say
from evtool.core.learn import Learned, LearnError
from evtool.core.learn import learn as learn_pack
from evtool.core.records import parse
from evtool.runtime.loop import ExitStatus
from evtool.runtime.progress import Meter, counting
from evtool.runtime.stage import fail
from evtool.schemas import load_pack
from evtool.transports.base import Source, TransportError
from evtool.transports.endpoint import Endpoint, Side
from evtool.transports.factory import open_source

PACK_FILES = {"pack.json", "envelope.json", "wire.json"}


@click.command()
@files_argument
@input_option
@amqp_option
@connect_timeout_option
@quiet_option
@option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
        help="The pack folder to write.")
@option("--count", type=click.IntRange(min=1), default=1000, show_default=True,
        help="Learn from at most this many events.")
@option("--seconds", type=SECONDS_OR_ZERO, default=None, help="Stop reading after this long.")
@option("--name", default=None, help="The pack's name [default: the folder's].")
@option("--open", "open_objects", is_flag=True,
        help="Allow fields the sample never showed (objects are closed by default: a field no "
             "event carried is rejected).")
@option("--force", is_flag=True, help="Replace DIR if it is a pack folder (or an empty one).")
@option("--json", "as_json", is_flag=True, help="The report on stdout as one JSON object.")
def learn(files: tuple[str, ...], input_spec: str, amqp_url: str, connect_timeout: float, quiet: bool,
          out_dir: str, count: int, seconds: float | None, name: str | None, open_objects: bool,
          force: bool, as_json: bool) -> ExitStatus:
    """Learn a pack (roles, envelope, one payload schema per source) from a sample of events.

    On the broker, -i 'amqp://...?exchange=X' taps the exchange with a private queue: nothing is
    taken from the pipeline's own queues.

    \b
    Example:
      evtool learn sample.ndjson --out mypack/
      evtool gen --pack mypack/ --count 100 --fast | evtool validate --pack mypack/
    """
    input_spec, files = input_of(input_spec, files)
    out = Path(out_dir)
    if out.exists() or out.is_symlink():
        if not force:
            raise click.UsageError(f"--out {out_dir} exists: give --force to replace it")
        held = not_a_pack(out)
        if held is not None:
            raise click.UsageError(f"--out {out_dir} {held}: --force replaces only a pack folder "
                                   "(or an empty one)")
    try:
        source = open_source(Endpoint(input_spec, amqp_url, Side.IN, "learn",
                                      connect_timeout=connect_timeout, files=files), 16 << 20)
    except TransportError as exc:
        fail("learn", str(exc))
    try:
        events, bad = sample(source, count, seconds, counting("learn", count, quiet or as_json))
    except TransportError as exc:
        fail("learn", str(exc))
    finally:
        source.close()
    try:
        learned = learn_pack(events, name or out.resolve().name, closed=not open_objects)
    except LearnError as exc:
        fail("learn", str(exc))
    try:
        write_pack(out, learned)
    except ValueError as exc:
        fail("learn", f"the learned pack does not load ({exc}); please report this sample")
    except OSError as exc:
        fail("learn", f"cannot write {out}: {exc.strerror or exc}")
    report(learned, len(events), bad, out, as_json, quiet)
    return ExitStatus.OK


def sample(source: Source, count: int, seconds: float | None,
           meter: Meter | None = None) -> tuple[list[dict[str, Any]], int]:
    """Up to `count` events (JSON objects) read within `seconds`; lines that are not, counted.
    `meter`: a bar on the terminal over the events read."""
    try:
        return _sample(source, count, seconds, meter)
    finally:
        if meter is not None:
            meter.close()


def _sample(source: Source, count: int, seconds: float | None,
            meter: Meter | None) -> tuple[list[dict[str, Any]], int]:
    events: list[dict[str, Any]] = []
    bad = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    while len(events) < count:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        batch = source.read(left)
        if batch is None:
            break
        for line in batch.lines:
            if not line.strip():
                continue
            try:
                value = parse(line)
            except (orjson.JSONDecodeError, ValueError):
                bad += 1
                continue
            if isinstance(value, dict):
                events.append(value)
            else:
                bad += 1
        source.ack(batch.token)
        if meter is not None:
            meter.tick(min(len(events), count))
    return events[:count], bad


def not_a_pack(out: Path) -> str | None:
    """Why --force would destroy more than a pack in `out` ("holds notes.txt, ..."); None for a
    pack folder or an empty one (a mistyped `--out . --force` once removed the folder it named)."""
    if out.is_symlink() or not out.is_dir():
        return "is a link, not a folder"
    if Path.cwd().is_relative_to(out.resolve()):
        return "is the folder evtool runs in, or holds it"
    for entry in sorted(out.iterdir()):
        if entry.name == "payloads" and entry.is_dir() and not entry.is_symlink():
            stray = next((p for p in sorted(entry.iterdir())
                          if not (p.name.endswith(".json") and p.is_file())), None)
            if stray is not None:
                return f"holds payloads/{stray.name}, which is no pack's file"
        elif entry.name not in PACK_FILES or not entry.is_file():
            return f"holds {entry.name}, which is no pack's file"
    return None


def write_pack(out: Path, learned: Learned) -> None:
    """The pack's files in a folder beside `out`, loaded as any pack is, then put in its place:
    a pack that does not load, or a write cut short, leaves whatever `out` held as it was.
    ValueError if the pack does not load."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (staging / "payloads").mkdir()
        _write(staging / "pack.json", learned.pack)
        if learned.envelope is not None:
            _write(staging / "envelope.json", learned.envelope)
        for source, schema in learned.payloads.items():
            path = staging / "payloads" / f"{source}.json"
            if path.parent != staging / "payloads":
                raise ValueError(f"source {source!r} is no file name")
            _write(path, schema)
        try:
            load_pack(str(staging))
        except ValueError as exc:
            raise ValueError(str(exc).replace(str(staging), str(out))) from None
        if out.exists() or out.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
            out.rename(old / out.name)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def report(learned: Learned, events: int, bad: int, out: Path, as_json: bool, quiet: bool) -> None:
    """Which field got each role and why, and what was inferred of each field."""
    if as_json:
        sys.stdout.write(json.dumps({"out": str(out), "events": events, "skipped": bad,
                                     "roles": learned.roles, "sources": learned.pack["sources"],
                                     "fields": learned.fields}, ensure_ascii=False) + "\n")
        return
    if quiet:
        return
    say("learn", f"{events} events read ({bad} lines skipped: not JSON objects); pack written to {out}")
    for role, said in learned.roles.items():
        say("learn", f"  {role}: {said['field'] if said['field'] is not None else '(none)'} - {said['why']}")
    say("learn", "  sources: " + ", ".join(f"{s} {w:.0%}" for s, w in learned.pack["sources"].items()))
    for where, what in learned.fields.items():
        say("learn", f"  {where}: {what}")
