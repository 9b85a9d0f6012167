"""aggregate's line reading in a child process: the same output as reading in-process, whatever
the batch and part sizes, and when the child dies."""

from __future__ import annotations

import os
import signal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.cli.offload import Offload
from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.fields import LineFields
from evtool.core.generator import GenConfig, Generator
from evtool.core.lineshape import field_reader
from evtool.core.stats import Stats
from evtool.schemas import load_pack
from tests.conftest import checker

PACK = load_pack()
READER = field_reader(PACK)
T0_US = 1_795_000_000 * 1_000_000


def messy(count: int, seed: int) -> list[bytes]:
    cfg = GenConfig(start_us=T0_US, pack=PACK, count=count, seed=seed, rate=40, duplicates=0.05,
                    out_of_order=0.2, max_delay=3, invalid=0.02)
    lines = [line for _, line, _ in Generator(cfg)]
    first = lines[0]
    shifted = first.replace(b"+00:00", b"+01:00").replace(b'"event_id":"', b'"event_id":"e', 1)
    return [*lines, shifted, b'{"kind":"metric"}', b"not json"]


def run(lines: list[bytes], cuts: list[int], split=None, reader=READER) -> tuple[list[bytes], str]:
    stage = AggregateStage(AggregateConfig(forward=True, lateness=1), Stats(), checker(), reader, split)
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
@given(st.lists(st.integers(1, 900), min_size=1, max_size=6), st.integers(1, 300))
def test_output_does_not_depend_on_batches_or_parts(cuts: list[int], part: int) -> None:
    """Window records, duplicates carried on them, dead letters: all a function of the input."""
    fields = LineFields(READER)

    def in_parts(lines: list[bytes]):
        return [(lines[i:i + part], fields(lines[i:i + part])) for i in range(0, len(lines), part)]

    assert run(LINES, cuts) == WHOLE
    assert run(LINES, cuts, in_parts) == WHOLE
    assert any(orjson.loads(x).get("duplicates") for x in WHOLE[0] if b'"kind":"window"' in x)


def test_a_child_reads_the_same_and_a_dead_child_loses_nothing() -> None:
    offload = Offload(LineFields(READER), part=100, least=0)
    try:
        assert run(LINES, [700], offload) == WHOLE
        assert offload._child is not None            # the child did the reading
        os.kill(offload._child.pid, signal.SIGKILL)
        assert run(LINES, [700], offload) == WHOLE   # the rest is read here
        assert offload._child is None
    finally:
        offload.close()


def test_a_batch_left_half_read_does_not_shift_the_next_one() -> None:
    fields = LineFields(READER)
    offload = Offload(fields, part=100, least=0)
    try:
        unread = offload(LINES[:1000])
        next(unread)
        unread.close()                                   # the child's other answers never read
        got = [r for _, results in offload(LINES[1000:2000]) for r in results]
        assert got == fields(LINES[1000:2000])
    finally:
        offload.close()
