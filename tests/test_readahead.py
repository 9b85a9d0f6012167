"""aggregate reads ahead in a child process: the same lines and output as reading in-process,
whatever the batch and part sizes; a dead child loses nothing of a file and fails loudly on a pipe."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.fields import LineFields
from evtool.core.generator import GenConfig, Generator
from evtool.core.linereader import LineReader, field_reader
from evtool.core.stats import Stats
from evtool.schemas import load_pack
from evtool.transports.base import TransportError
from evtool.transports.frames import HEAD, FrameReader
from evtool.transports.readahead import ReadAheadSource
from evtool.transports.ring import RING_BYTES, Place, Ring
from evtool.transports.stdio import CHUNK, FdSource
from tests.conftest import checker
from tests.conftest import run as run_cli

PACK = load_pack()


def _reader() -> LineReader:
    reader = field_reader(PACK)
    assert reader is not None, "the evtool pack reads lines without a parse"
    return reader


READER = _reader()
T0_US = 1_795_000_000 * 1_000_000


def messy(count: int, seed: int) -> list[bytes]:
    cfg = GenConfig(start_us=T0_US, pack=PACK, count=count, seed=seed, rate=40, duplicates=0.05,
                    out_of_order=0.2, max_delay=3, invalid=0.02)
    lines = [line for _, line, _ in Generator(cfg)]
    first = lines[0]
    shifted = first.replace(b"+00:00", b"+01:00").replace(b'"event_id":"', b'"event_id":"e', 1)
    return [*lines, shifted, b'{"kind":"metric"}', b"not json"]


def run(lines: list[bytes], cuts: list[int], fields=None, reader=READER) -> tuple[list[bytes], str]:
    stage = AggregateStage(AggregateConfig(forward=True, lateness=1), Stats(), checker(), reader, fields)
    out: list[bytes] = []
    at, i = 0, 0
    while at < len(lines):
        size = cuts[i % len(cuts)]
        stage.process(lines[at:at + size], out, out)
        at, i = at + size, i + 1
    stage.finish(out, out)
    return out, stage.stats.summary(1.0)


LINES = messy(3000, 8)
WHOLE = run(LINES, [len(LINES)])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 900), min_size=1, max_size=6))
def test_output_does_not_depend_on_how_the_input_was_cut_into_batches(cuts: list[int]) -> None:
    """Window records, duplicates carried on them, dead letters: all a function of the input."""
    assert run(LINES, cuts) == WHOLE
    assert any(orjson.loads(x).get("duplicates") for x in WHOLE[0] if b'"kind":"window"' in x)


CAP = 400        # some of the generated lines are longer: cut, then refused as too large


def big_input() -> bytes:
    """Several reads' worth of lines, with blank lines, CRLF ends, lines over CAP, no last newline."""
    lines = [line + (b"\r" if i % 7 == 0 else b"") for i, line in enumerate(LINES)]
    body = b"\n".join(lines) + b"\n\n"
    return body * 4 + b"x" * 3000 + b"\n" + LINES[0]


def drain(source) -> list[tuple[list[bytes], list[Any] | None]]:
    batches: list[tuple[list[bytes], list[Any] | None]] = []
    while (batch := source.read()) is not None:
        prepared = source.prepared(batch.lines) if isinstance(source, ReadAheadSource) else None
        batches.append((batch.lines, prepared))
    return batches


def plain_lines(path: Path) -> list[bytes]:
    fd = os.open(path, os.O_RDONLY)
    source = FdSource(fd, CAP, "test", owned=True)
    try:
        return [line for lines, _ in drain(source) for line in lines]
    finally:
        source.close()


def test_the_child_reads_what_the_parent_would_with_each_batch_read_for_the_stage(tmp_path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(big_input())
    fields = LineFields(READER)
    source = ReadAheadSource(FdSource(os.open(path, os.O_RDONLY), CAP, "test", owned=True), fields)
    try:
        batches = drain(source)
        assert source.extent() == (0, path.stat().st_size)    # where reading began, for progress
    finally:
        source.close()
    assert len(batches) > 1
    assert [line for lines, _ in batches for line in lines] == plain_lines(path)
    assert all(as_worked(prepared, lines, fields) for lines, prepared in batches)
    assert source.prepared([]) is None                  # other lines than the batch: read here


def as_worked(prepared: list | None, lines: list[bytes], fields: LineFields) -> bool:
    """What the child sent with a batch: the work on its first lines (all, unless the stage
    waited for it and took the batch over)."""
    return prepared is not None and prepared == fields(lines)[:len(prepared)]


def test_a_stage_waiting_for_its_child_takes_batches_over_part_done(tmp_path) -> None:
    """A child slower than the stage (lab3's reading, the download monitor's parse) set the pace
    while the stage sat idle; once the stage waits, the child sends the batch with what it has
    done and the stage does the rest while the child reads on. Either way the work is the same."""
    from evtool.runtime.ahead import Ahead

    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(LINES * 30) + b"\n")
    fields, stage = LineFields(READER), os.getpid()

    def slow(lines: list[bytes]) -> list:
        if os.getpid() != stage:
            select.select([], [], [], 0.002)            # the child's work, slower than the stage's
        return fields(lines)

    ahead = Ahead(slow)
    ahead.source = source = ReadAheadSource(FdSource(os.open(path, os.O_RDONLY), CAP, "test",
                                                     owned=True), slow)
    batches = []
    try:
        while (batch := source.read()) is not None:
            batches.append((batch.lines, source.prepared(batch.lines), ahead(batch.lines)))
    finally:
        source.close()
    assert len(batches) > 5
    assert [line for lines, _, _ in batches for line in lines] == plain_lines(path)
    assert all(as_worked(sent, lines, fields) and got == fields(lines) for lines, sent, got in batches)
    assert any(sent is not None and len(sent) < len(lines) for lines, sent, _ in batches)


def test_a_killed_child_loses_nothing_of_a_file(tmp_path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(big_input() * 3)
    source = ReadAheadSource(FdSource(os.open(path, os.O_RDONLY), CAP, "test", owned=True),
                             LineFields(READER))
    try:
        first = source.read()
        assert first is not None and source._child is not None
        os.kill(source._child.pid, signal.SIGKILL)
        rest = [line for lines, _ in drain(source) for line in lines]
    finally:
        source.close()
    assert source._fallback is not None              # the rest was read here
    assert first.lines + rest == plain_lines(path)


def test_a_killed_child_on_a_pipe_is_an_error_not_an_early_end(tmp_path) -> None:
    data = big_input() * 6
    read_end, write_end = os.pipe()

    def feed() -> None:
        with open(write_end, "wb") as pipe, contextlib.suppress(BrokenPipeError):
            pipe.write(data)

    source = ReadAheadSource(FdSource(read_end, CAP, "a pipe", owned=True), LineFields(READER))
    writer = threading.Thread(target=feed)      # after the fork: a fork copies no thread
    writer.start()
    try:
        assert source.read() is not None and source._child is not None
        os.kill(source._child.pid, signal.SIGKILL)
        with pytest.raises(TransportError, match="ahead died"):
            drain(source)
    finally:
        source.close()
        writer.join()


def test_aggregate_reading_ahead_writes_what_the_stage_makes_in_process(tmp_path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(LINES * 3) + b"\n")
    got = run_cli(["aggregate", "--forward", "--lateness", "1", "-q", "-i", str(path)])
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == run(LINES * 3, [len(LINES) * 3])[0]


def test_reading_ahead_waits_for_a_free_cpu(monkeypatch) -> None:
    """The child is started only when fewer threads are runnable than there are CPUs: beside a
    busy neighbour or the other stages of a pipeline it would only take turns with the stage."""
    from evtool.transports import readahead

    monkeypatch.setattr(readahead, "usable_cpus", lambda: 2)
    assert readahead.spare_cpu("0.50 0.40 0.30 1/311 4242\n")
    assert not readahead.spare_cpu("1.10 0.90 0.70 2/311 4242\n")
    assert not readahead.spare_cpu("2.10 1.90 1.70 3/311 4242\n")
    assert readahead.spare_cpu("garbled") is True
    monkeypatch.setattr(readahead, "usable_cpus", lambda: 1)
    assert not readahead.spare_cpu("0.50 0.40 0.30 1/311 4242\n")
    assert readahead.spare_cpu("garbled") is False


def test_a_stopped_and_continued_child_sends_every_batch_whole(tmp_path) -> None:
    """Ctrl-Z and fg (or a profiler) stop the child in a write to a full pipe, which the stop cuts
    short: the batches must still arrive whole and in order (CPython's buffered writer once
    put the rest of a cut frame behind bytes of the next, and the stage died reading it)."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(LINES * 40) + b"\n")
    fields = LineFields(READER)
    source = ReadAheadSource(FdSource(os.open(path, os.O_RDONLY), CAP, "test", owned=True), fields)
    assert source._child is not None
    child, done = source._child.pid, threading.Event()

    def stop_and_continue() -> None:
        while not done.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
                done.wait(0.002)
                os.kill(child, signal.SIGCONT)
            done.wait(0.004)

    poker = threading.Thread(target=stop_and_continue)
    poker.start()
    batches = []
    try:
        while (batch := source.read()) is not None:
            batches.append((batch.lines, source.prepared(batch.lines)))
            done.wait(0.01)                 # the child fills the pipe and blocks writing
    finally:
        done.set()
        poker.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGCONT)
        source.close()
    assert len(batches) > 5
    assert [line for lines, _ in batches for line in lines] == plain_lines(path)
    assert all(as_worked(prepared, lines, fields) for lines, prepared in batches)


def test_the_child_holds_the_input_and_its_pipes_only(tmp_path) -> None:
    """The child is a fork of the stage: a copy of the stage's stdout or of any file it had open
    would keep whoever reads them waiting for an end that never comes while the child lives."""
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(LINES * 40) + b"\n")
    other = os.open(tmp_path / "other", os.O_WRONLY | os.O_CREAT)
    source = ReadAheadSource(FdSource(os.open(path, os.O_RDONLY), CAP, "test", owned=True),
                             LineFields(READER))
    try:
        assert source.read() is not None and source._child is not None     # the child is serving
        held = {int(fd): os.readlink(f"/proc/{source._child.pid}/fd/{fd}")
                for fd in os.listdir(f"/proc/{source._child.pid}/fd")}
        assert held[0] == held[1] == os.devnull
        assert str(path) in held.values() and str(tmp_path / "other") not in held.values()
        pipes = set(held) - {0, 1, 2, source.inner.fd}     # the frames', and the ring's words
        assert len(pipes) == 2 and all(held[fd].startswith("pipe:") for fd in pipes)
        assert drain(source)
    finally:
        os.close(other)
        source.close()


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.binary(max_size=40), max_size=6), cuts=st.lists(st.integers(1, 30), max_size=12))
def test_frames_come_whole_however_the_pipe_cuts_them(payloads: list[bytes], cuts: list[int]) -> None:
    """Frames written a few bytes at a time, their heads cut too, are read whole and in order,
    empty ones included; the end of the stream says so."""
    stream = b"".join(HEAD.pack(len(p)) + p for p in payloads)
    pieces, at = [], 0
    for cut in [*cuts, len(stream)]:
        pieces.append(stream[at:at + cut])
        at += cut
    pieces.append(stream[at:])
    read_end, write_end = os.pipe()
    reader, got = FrameReader(read_end), []
    try:
        for piece in filter(None, pieces):
            os.write(write_end, piece)
            while select.select([read_end], [], [], 0)[0]:
                payload = reader.read()
                if payload is not None:
                    got.append(bytes(payload))
        os.close(write_end)
        with pytest.raises(EOFError):
            while True:
                payload = reader.read()
                assert payload is None, "every frame was whole before the end"
    finally:
        os.close(read_end)
    assert got == payloads


@pytest.mark.parametrize("ring_bytes", [RING_BYTES, 3 * CHUNK // 2, 1000])
def test_lines_cross_in_shared_memory_wherever_the_ring_has_room(tmp_path, monkeypatch,
                                                                 ring_bytes: int) -> None:
    """Each batch's lines cross in the ring, not the frames' pipe: with room for two batches, for
    one (a batch's room is free only once the stage has copied the one before out), and for none
    (a batch larger than the ring goes in its frame). The stage reads the same lines every way."""
    taken: list[int] = []
    take = Ring.take

    def counted(ring: Ring, place: Place) -> list[bytes]:
        taken.append(place[1])
        return take(ring, place)

    monkeypatch.setattr(Ring, "take", counted)
    path = tmp_path / "in.ndjson"
    path.write_bytes(b"\n".join(LINES * 40) + b"\n")
    fields = LineFields(READER)
    source = ReadAheadSource(FdSource(os.open(path, os.O_RDONLY), CAP, "test", owned=True), fields,
                             ring_bytes)
    try:
        batches = drain(source)
    finally:
        source.close()
    assert len(batches) > 5
    assert [line for lines, _ in batches for line in lines] == plain_lines(path)
    assert all(as_worked(prepared, lines, fields) for lines, prepared in batches)
    if ring_bytes > CHUNK:
        assert len(taken) == len(batches)
    else:
        assert taken == []
