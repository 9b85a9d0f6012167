"""audit reads metric lines laid out as aggregate writes them without parsing: such a read must
only ever accept what the parsing path accepts, with the same values, and must accept what
aggregate writes (or the speed is gone)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evtool.core import metricline
from evtool.core.instant import instant_us, iso_us, shaped_us
from evtool.core.records import parse
from evtool.core.stats import Stats
from evtool.store import open_store
from evtool.store.audit import AuditStage
from evtool.store.engine import sqlite3
from tests.conftest import checker, gen_lines, run

T0 = 1_795_000_000 * 10**6
NAMES = st.sampled_from(["s1", "s.2", "a:b", "", "é", 'x"y', "b\\c", "z"])
TEXTS = st.text(alphabet='ab,"\\é:-]', max_size=6)


def mostly(draw: st.DrawFn, good: st.SearchStrategy, bad: st.SearchStrategy) -> Any:
    """Four draws in five from `good`: lines must often be wholly good for the read to accept."""
    return draw(bad if draw(st.integers(0, 4)) == 0 else good)


@st.composite
def metric_lines(draw: st.DrawFn) -> bytes:
    """Metric lines near the valid ones: each field good more often than not, keys sorted as
    aggregate writes them, now and then a key named twice or an extra field."""
    counts = mostly(draw, st.dictionaries(st.sampled_from(["s1", "s.2", "a:b", ""]), st.integers(0, 4),
                                          max_size=3),
                    st.dictionaries(NAMES, st.integers(-1, 4) | st.sampled_from([2**31, 1.5, True]),
                                    max_size=3))
    numbers = [n for n in counts.values() if type(n) is int]
    total = sum(numbers) + mostly(draw, st.just(0), st.sampled_from([1, -1]))
    start = T0 + draw(st.integers(0, 10**9)) * draw(st.sampled_from([1, 10**6]))
    end = start + mostly(draw, st.just(5 * 10**6), st.sampled_from([0, -1, 1]))
    n = max(total, 0) if total < 10 else 3              # a huge total is never matched by its ids
    names = TEXTS if draw(st.integers(0, 4)) == 0 else st.sampled_from(["6f1c", "e-1", ""])
    ids = draw(st.lists(names, min_size=n, max_size=n + mostly(draw, st.just(0), st.just(1))))
    start_iso = mostly(draw, st.just(iso_us(start)), st.sampled_from(
        ["2026-13-01T00:00:00Z", iso_us(start).replace("Z", "+00:00"), iso_us(start) + " "]))
    record = {
        "kind": mostly(draw, st.just("metric"), st.just("window")),
        "metric_id": mostly(draw, st.sampled_from(["m-1", "0d7d4bdb-d011-5ea7-a5e7-49157338a735"]),
                            TEXTS),
        "date": mostly(draw, st.just(start_iso[:10]), st.just("2026-01-01")),
        "region": mostly(draw, st.sampled_from(["north", "los-rios", ""]), TEXTS),
        "window_start": start_iso, "window_end": iso_us(end),
        "window_seconds": mostly(draw, st.sampled_from([5, 1]), st.sampled_from([0, 0.5, -5])),
        "counts": counts, "total": total, "input_event_ids": ids,
    }
    if draw(st.integers(0, 9)) == 0:
        record["extra"] = 1
    line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    if counts and draw(st.integers(0, 5)) == 0:
        first = orjson.dumps(dict([next(iter(counts.items()))]))[1:-1]
        line = line.replace(b'{"counts":{', b'{"counts":{' + first + b",", 1)
    return line


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metric_lines())
def test_a_metric_read_without_a_parse_is_one_the_checks_accept_with_its_values(line: bytes) -> None:
    read = metricline.read(line.decode("utf-8", "replace"))
    if read is None:
        return
    record = parse(line)                                  # no duplicate key: it does not raise
    assert checker().problem(record) is None
    assert read[:-1] == (record["metric_id"], record["date"], record["region"], record["window_start"],
                         record["window_end"], record["window_seconds"],
                         orjson.dumps(record["counts"]).decode(), record["total"])
    assert type(read.window_seconds) is type(record["window_seconds"])
    assert read.event_ids() == record["input_event_ids"]


def test_every_metric_aggregate_writes_is_read_without_a_parse() -> None:
    events = gen_lines(2000, 5, "--duplicates", "0.1", "--out-of-order", "0.2")
    lines = run(["aggregate", "-q", "--window", "2"], stdin=events).stdout.splitlines()
    metrics = [x for x in lines if b'"kind":"metric"' in x]
    assert len(metrics) > 100
    assert all(metricline.read(x.decode()) is not None for x in metrics)


def test_audit_stores_a_metric_alike_however_its_line_is_laid_out(tmp_path: Path) -> None:
    events = gen_lines(500, 6)
    lines = run(["aggregate", "-q"], stdin=events).stdout.splitlines()
    unsorted = [orjson.dumps(dict(reversed(orjson.loads(x).items()))) for x in lines]  # parsed
    assert unsorted != lines
    stored = []
    for name, batch in (("fast", lines), ("parsed", unsorted)):
        db = tmp_path / f"{name}.db"
        store = open_store(str(db))
        stage = AuditStage(store, Stats(), checker())
        out: list[bytes] = []
        stage.process(batch, out, out)
        stage.finish(out, out)
        store.close()
        assert out == batch
        with sqlite3.connect(db) as conn:
            stored.append((
                conn.execute("SELECT metric_id, date, region, window_start, window_end, "
                             "window_seconds, typeof(window_seconds), counts, total FROM metrics_out "
                             "ORDER BY seq").fetchall(),
                conn.execute("SELECT * FROM trace ORDER BY 1, 2").fetchall()))
    assert stored[0] == stored[1] and len(stored[0][1]) == 500


@settings(max_examples=2000, deadline=None)
@given(st.integers(-62_135_596_800 * 10**6, 253_402_300_799 * 10**6), st.sampled_from(
    ["Z", "+00:00", "-03:00", "+14:00", "z"]), st.sampled_from(["T", "t", " "]),
    st.integers(0, 9), st.booleans())
def test_a_shaped_timestamp_is_the_instant_the_time_rule_gives(at: int, offset: str, sep: str,
                                                               digits: int, leap: bool) -> None:
    text = iso_us(at)[:19].replace("T", sep)
    if leap:
        text = text[:17] + "60"
    text += ("." + f"{at % 10**6:06d}987"[:digits] if digits else "") + offset
    try:
        want: int | None = instant_us(text)
    except ValueError:
        want = None
    got = shaped_us(text)
    assert got is None or got == want
    if sys.version_info >= (3, 11) and sep == "T" and offset != "z" and not leap:
        assert got == want                  # the common shapes take the quick way
