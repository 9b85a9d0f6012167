"""Derived records are checked by every stage that reads them: good ones pass or are stored, broken
ones become dead letters, and nothing crashes or loses the records around them."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.dashboard import DashboardStats
from evtool.core.instant import iso_us
from evtool.core.stats import Stats
from evtool.core.validation import ValidateStage
from evtool.store import open_store
from evtool.store.audit import AuditStage
from evtool.store.engine import sqlite3
from tests.conftest import PG, checker, pack_validator, psql, run

T0 = 1_795_000_000
KINDS = ("window", "metric", "alert", "deadletter")


def good_record(rng: random.Random, i: int) -> dict:
    """A record of a random kind that keeps every rule of the contract (§2.2)."""
    kind = KINDS[i % 4]
    start, end = iso_us((T0 + 5 * i) * 10**6), iso_us((T0 + 5 * i + 5) * 10**6)
    if kind == "window":
        cells = {r: {s: rng.randint(1, 4) for s in rng.sample(["s1", "s2", "s3"], rng.randint(1, 3))}
                 for r in rng.sample(["north", "south", "east"], rng.randint(1, 3))}
        total = sum(sum(c.values()) for c in cells.values())
        by_source: dict[str, int] = {}
        for by in cells.values():
            for s, n in by.items():
                by_source[s] = by_source.get(s, 0) + n
        return {"kind": "window", "window_start": start, "window_end": end, "total": total,
                "by_source": by_source, "by_region": {r: sum(c.values()) for r, c in cells.items()},
                "by_region_source": cells, "event_ids": [f"e{i}-{n}" for n in range(total)],
                "duplicates": rng.randint(0, 3)}
    if kind == "metric":
        counts = {s: rng.randint(0, 5) for s in ("s1", "s2")}
        total = sum(counts.values())
        return {"kind": "metric", "metric_id": f"m-{i}", "date": start[:10], "region": "north",
                "window_start": start, "window_end": end, "window_seconds": 5, "counts": counts,
                "total": total, "input_event_ids": [f"e{i}-{n}" for n in range(total)]}
    if kind == "alert":
        return {"kind": "alert", "alert_id": f"a-{i}", "window_start": start, "region": "north",
                "source": "s1", "count": rng.randint(10, 90), "baseline": rng.random() * 5,
                "threshold": 5.0, "score": rng.random() * 20}
    return {"kind": "deadletter", "stage": "validate", "reason": "json", "error": f"bad {i}",
            "raw": f"line {i}"}


# Each breaks a rule of the contract whatever the record holds: a required field gone, a count
# that is no count, a time that is no UTC time, ids that are not strings, totals that do not add up.
BREAKS: dict[str, list[tuple[str, Any]]] = {
    "window": [("total", "x"), ("duplicates", "x"), ("by_region", {"north": -1}), ("event_ids", [5]),
               ("window_start", "1-01-01T00:00:00Z"), ("window_end", [1]), ("total", 10**9),
               ("by_region_source", "cells"), ("event_ids", None)],
    "metric": [("date", [2026]), ("counts", {"s1": 1.5}), ("total", -1), ("input_event_ids", "e1"),
               ("window_end", "2026-11-26T00:00:00+01:00"), ("window_seconds", 0), ("metric_id", 7),
               ("total", 10**9)],
    "alert": [("count", [1]), ("alert_id", None), ("score", "high"), ("window_start", "yesterday"),
              ("baseline", {"mean": 1})],
    "deadletter": [("reason", 3), ("raw", {"line": 1}), ("error", None), ("stage", ["x"])],
}


def broken_record(rng: random.Random, i: int) -> dict:
    record = good_record(rng, i)
    if rng.random() < 0.25:
        required = [k for k in record if k not in ("kind", "duplicates")]
        del record[rng.choice(required)]
    else:
        field, value = rng.choice(BREAKS[record["kind"]])
        record[field] = value
    return record


def corpus(seed: int, n: int = 120) -> tuple[list[bytes], list[bool]]:
    """Lines of derived records (and a few events and unknown kinds); True where the line is good."""
    rng = random.Random(seed)
    lines, good = [], []
    for i in range(n):
        roll = rng.random()
        if roll < 0.5:
            record, ok = good_record(rng, i), True
        elif roll < 0.9:
            record, ok = broken_record(rng, i), False
        else:
            record, ok = {"kind": "heartbeat", "n": [i, None, {"x": "y"}]}, True
        lines.append(orjson.dumps(record))
        good.append(ok)
    return lines, good


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6))
def test_validate_and_aggregate_pass_good_records_and_reject_broken_ones(seed) -> None:
    lines, good = corpus(seed)
    for stage in (ValidateStage(pack_validator(), checker(), Stats(), 1 << 20),
                  AggregateStage(AggregateConfig(), Stats(), checker())):
        out: list[bytes] = []
        dead: list[bytes] = []
        stage.process(lines, out, dead)
        stage.finish(out, dead)
        assert out == [line for line, ok in zip(lines, good, strict=True) if ok]
        raws = [orjson.loads(d)["raw"].encode() for d in dead]
        assert raws == [line for line, ok in zip(lines, good, strict=True) if not ok]
        assert all(orjson.loads(d)["reason"] == "schema" for d in dead)
        assert stage.stats.in_ == len(out) + len(dead)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6))
def test_audit_stores_every_good_record_around_the_bad_ones(tmp_path_factory, seed) -> None:
    lines, good = corpus(seed)
    db = tmp_path_factory.mktemp("audit") / "a.db"
    store = open_store(str(db))
    stage = AuditStage(store, Stats(), checker())
    out: list[bytes] = []
    dead: list[bytes] = []
    stage.process(lines, out, dead)
    stage.finish(out, dead)
    store.close()
    assert out == [line for line, ok in zip(lines, good, strict=True) if ok]
    assert len(dead) == good.count(False) and stage.stats.in_ == len(out) + len(dead)
    want = {k: sum(ok and orjson.loads(x)["kind"] == k for x, ok in zip(lines, good, strict=True))
            for k in KINDS}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM windows").fetchone()[0] == want["window"]
        assert conn.execute("SELECT count(*) FROM metrics_out").fetchone()[0] == want["metric"]
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == want["alert"]
        stored_dead = conn.execute("SELECT count(*) FROM deadletters").fetchone()[0]
    assert stored_dead == want["deadletter"] + good.count(False)


def test_watch_folds_good_records_and_counts_the_rest_as_rejected() -> None:
    lines, good = corpus(11)
    stats = DashboardStats(checker=checker())
    stats.feed(lines)
    kinds = [orjson.loads(x)["kind"] for x, ok in zip(lines, good, strict=True) if ok]
    assert stats.rejected == good.count(False)
    assert (stats.windows, stats.metrics, stats.alerts) == (
        kinds.count("window"), kinds.count("metric"), kinds.count("alert"))
    assert sum(stats.dead.values()) == kinds.count("deadletter")


def summary(stderr: bytes) -> tuple[int, int, int]:
    """(in, out, dead letters) from a stage's summary line."""
    words = stderr.decode().split(": ", 1)[1].split(", ")
    return int(words[0].split()[0]), int(words[1].split()[0]), int(words[2].split()[0])


def test_every_stage_on_the_command_line(tmp, pg_database) -> None:
    lines, good = corpus(5, 400)
    data = b"\n".join(lines) + b"\n"
    n_good, n_bad = good.count(True), good.count(False)
    for command in (["validate"], ["aggregate"], ["audit", "--db", str(tmp / "a.db")],
                    ["audit", "--db", f"{PG}/{pg_database}"]):
        result = run(command, stdin=data)
        assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
        assert summary(result.stderr) == (400, n_good, n_bad), (command, result.stderr)
    assert int(psql(pg_database, "SELECT count(*) FROM alerts")) == sum(
        ok and orjson.loads(x)["kind"] == "alert" for x, ok in zip(lines, good, strict=True))
    watched = run(["watch", "--once", "--json"], stdin=data)
    assert watched.returncode == 0 and b"Traceback" not in watched.stderr
    snap = json.loads(watched.stdout)
    assert snap["records"] == 400 and snap["rejected"] == n_bad
