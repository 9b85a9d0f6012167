"""UUIDs are case-insensitive (the contract takes hex digits of either case): an id sent once in
lower and once in upper case is one event for dedupe, for the trace and for the audit."""

from __future__ import annotations

import orjson

from evtool.store.engine import sqlite3
from tests.conftest import gen_lines, records, run


def test_an_id_in_two_cases_is_one_event_everywhere(tmp) -> None:
    events = [orjson.loads(line) for line in gen_lines(20, 6).splitlines()]
    shouted = {**events[3], "event_id": events[3]["event_id"].upper()}
    stream = b"\n".join(orjson.dumps(e) for e in [*events, shouted]) + b"\n"
    out = run(["aggregate", "--forward", "--no-alerts"], stdin=stream)
    got = records(out.stdout)
    metrics = [r for r in got if r.get("kind") == "metric"]
    assert sum(m["total"] for m in metrics) == 20
    assert b"1 duplicates" in out.stderr
    ids = [i for m in metrics for i in m["input_event_ids"]]
    assert all(i == i.lower() for i in ids) and len(ids) == len(set(ids)) == 20
    for order in ([*events, shouted], [shouted, *events]):     # whichever spelling comes first
        db = tmp / f"{order[0]['event_id'][:4]}.db"
        line = b"\n".join(orjson.dumps(e) for e in order) + b"\n"
        piped = run(["aggregate", "--forward", "--no-alerts", "-q"], stdin=line).stdout
        assert run(["audit", "--db", str(db), "-q", "-o", "/dev/null"], stdin=piped + line).returncode == 0
        with sqlite3.connect(db) as conn:
            stored = [r[0] for r in conn.execute("SELECT event_id FROM events_in")]
            traced = {r[0] for r in conn.execute("SELECT event_id FROM trace")}
        assert len(stored) == 20 and set(stored) == traced
        assert run(["replay", "--db", str(db), "--verify", "-q"]).returncode == 0
