"""The "certainly valid" fast paths, compiled from any pack's schemas and the record schemas: they
may only say yes where the compiled schemas do (soundness), and they must fire on everything gen
and aggregate write (completeness), or the speed is an accident of one pack."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.derived import DerivedChecker
from evtool.core.linereader import field_reader
from evtool.core.validation import EventValidator
from evtool.schemas import builtin_packs, derived_schemas, load_pack
from tests.conftest import run

ROOT = Path(__file__).resolve().parent.parent
PACKS = [*builtin_packs(), *(str(p) for p in sorted((ROOT / "examples" / "packs").iterdir()))]
DROP = object()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["", "1.0", "0.3", "ZZ", "2026-02-30T00:00:00Z",
                                             "2026-12-02T10:00:00", "a" * 300]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=4)


def _made(pack: str, n: int = 400) -> list[bytes]:
    return run(["gen", "--pack", pack, "--count", str(n), "--seed", "12", "--fast", "-q"]).stdout.splitlines()


_MADE = {pack: _made(pack) for pack in PACKS}


@pytest.mark.parametrize("pack", PACKS)
def test_the_fast_path_fires_on_every_event_gen_writes(pack: str) -> None:
    validator = EventValidator(load_pack(pack))
    events = [orjson.loads(line) for line in _MADE[pack]]
    assert len(events) == 400
    missed = [e for e in events if not validator.accept(e)]
    assert not missed, f"{len(missed)} of 400 left the fast path, e.g. {missed[0]}"


@pytest.mark.parametrize("pack", PACKS)
def test_the_whole_line_fast_path_fires_on_every_line_gen_writes(pack: str) -> None:
    match = _validators(pack).line_match
    assert match is not None, f"{pack} gives no whole-line expression"
    missed = [line for line in _MADE[pack] if not match(line)]
    assert not missed, f"{len(missed)} of 400 left the line fast path, e.g. {missed[0]!r}"


EDITS = [b"", b" ", b'"', b"\\", b",", b"\xff", b"0", b"-", b".5", b"e9", b"x", b"null", b"{}", b'"a":1,']


@settings(max_examples=600, deadline=None)
@given(pack=st.sampled_from(PACKS), pick=st.integers(0, 10**6), changes=st.lists(
    st.tuples(st.integers(0, 10**6), st.one_of(JSON, st.just(DROP))), max_size=2),
    edits=st.lists(st.tuples(st.integers(0, 600), st.sampled_from(EDITS), st.integers(0, 3)), max_size=2))
def test_the_whole_line_fast_path_says_yes_only_where_the_schemas_do(pack: str, pick: int,
                                                                       changes: list, edits: list) -> None:
    from evtool.core.records import parse

    validator = _validators(pack)
    made = _MADE[pack]
    event = orjson.loads(made[pick % len(made)])
    for where, value in changes:
        paths = _paths(event)
        event = _changed(event, paths[where % len(paths)], value) if paths else event
    line = orjson.dumps(event)
    for at, text, cut in edits:
        at = min(at, len(line))
        line = line[:at] + text + line[at + cut:]
    assert validator.line_match is not None
    if validator.line_match(line):
        assert validator.slow_error(parse(line)) is None, line


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _paths(sub, (*at, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _paths(sub, (*at, i))
    return found


def _changed(event: Any, path: tuple[Any, ...], value: Any) -> Any:
    event = copy.deepcopy(event)
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if value is DROP:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    return event




@settings(max_examples=300, deadline=None)
@given(pack=st.sampled_from(PACKS), pick=st.integers(0, 10**6), changes=st.lists(
    st.tuples(st.integers(0, 10**6), st.one_of(JSON, st.just(DROP))), min_size=1, max_size=3))
def test_the_fast_path_says_yes_only_where_the_schemas_do(pack: str, pick: int, changes: list) -> None:
    validator = _validators(pack)
    made = _MADE[pack]
    event = orjson.loads(made[pick % len(made)])
    for where, value in changes:
        paths = _paths(event)
        if not paths:
            break
        event = _changed(event, paths[where % len(paths)], value)
    if validator.accept(event):
        assert validator.slow_error(event) is None, event


_CACHE: dict[str, EventValidator] = {}


def _validators(pack: str) -> EventValidator:
    if pack not in _CACHE:
        _CACHE[pack] = EventValidator(load_pack(pack))
    return _CACHE[pack]


def _derived_lines() -> list[dict[str, Any]]:
    made = run(["gen", "--count", "6000", "--seed", "3", "--fast", "--invalid", "0.05",
                "--burst-probability", "0.002", "-q"]).stdout
    counted = run(["aggregate", "--window", "30", "--alert-min-count", "5", "-q"],
                  stdin=run(["validate", "-q"], stdin=made).stdout).stdout
    return [orjson.loads(x) for x in counted.splitlines()] + [
        orjson.loads(x) for x in run(["validate", "-q"], stdin=made).stdout.splitlines()
        if b'"kind":"deadletter"' in x]


_DERIVED = _derived_lines()


@pytest.mark.parametrize("kind", ["window", "metric", "alert", "deadletter"])
def test_the_record_fast_paths_fire_on_every_record_evtool_writes(kind: str) -> None:
    written = [r for r in _DERIVED if r["kind"] == kind]
    assert written, kind
    assert all(_checker().fast(r) for r in written)


@settings(max_examples=300, deadline=None)
@given(pick=st.integers(0, 10**6), changes=st.lists(
    st.tuples(st.integers(0, 10**6), st.one_of(JSON, st.just(DROP))), min_size=1, max_size=2))
def test_the_record_fast_paths_say_yes_only_where_the_schemas_do(pick: int, changes: list) -> None:
    checker = _checker()
    record = _DERIVED[pick % len(_DERIVED)]
    for where, value in changes:
        paths = [p for p in _paths(record) if p != ("kind",)]
        record = _changed(record, paths[where % len(paths)], value)
    schema_says = checker.schema_problem(record)
    fast = checker.fast(record)
    if fast:
        assert schema_says is None, (record, schema_says)


_CHECKERS: list[DerivedChecker] = []


def _checker() -> DerivedChecker:
    if not _CHECKERS:
        _CHECKERS.append(DerivedChecker(derived_schemas()))
    return _CHECKERS[0]


_READERS = {pack: field_reader(load_pack(pack)) for pack in PACKS}
READ = [pack for pack, reader in _READERS.items() if reader is not None]


@st.composite
def read_lines(draw: st.DrawFn) -> tuple[str, bytes]:
    """A pack with a whole-line reader and a line gen wrote for it, changed by value, by letters
    turned to the other case (hex digits, names, zones) and by a byte edit."""
    pack = draw(st.sampled_from(READ))
    made = _MADE[pack]
    event = orjson.loads(made[draw(st.integers(0, len(made) - 1))])
    for where, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.one_of(JSON, st.just(DROP))),
                                      max_size=1)):
        paths = _paths(event)
        event = _changed(event, paths[where % len(paths)], value) if paths else event
    line = bytearray(orjson.dumps(event))
    for at in draw(st.lists(st.integers(0, 600), max_size=40)):
        at = at % len(line)
        line[at:at + 1] = bytes(line[at:at + 1]).swapcase()
    for at, text, cut in draw(st.lists(st.tuples(st.integers(0, 600), st.sampled_from(EDITS),
                                                 st.integers(0, 3)), max_size=1)):
        at = min(at, len(line))
        line[at:at + cut] = text
    return pack, bytes(line)


@settings(max_examples=600, deadline=None)
@given(read_lines())
def test_aggregate_reads_a_line_without_parsing_only_as_parsing_reads_it(drawn: tuple[str, bytes]) -> None:
    """Whatever aggregate's whole-line reader takes from a line (id, region, source, instant,
    dedupe key) is what the parsing path takes from the same line: ids in either case, any edit."""
    from evtool.core.fields import LineFields, event_fields
    from evtool.core.records import parse

    pack, line = drawn
    reader = _READERS[pack]
    assert reader is not None
    got = LineFields(reader)([line])[0]
    if got is not None:
        assert got == event_fields(parse(line), reader.roles), line


@settings(max_examples=400, deadline=None)
@given(read_lines())
def test_audit_stores_a_line_read_without_parsing_as_it_stores_it_parsed(drawn: tuple[str, bytes]) -> None:
    """audit's rows and dead letters for a line are the same whether the pack's whole-line
    reader reads it or the line is parsed: the id folded, the instant, the text kept."""
    from types import SimpleNamespace
    from unittest.mock import patch

    from evtool.core.stats import Stats
    from evtool.store.audit import AuditStage

    pack, line = drawn
    reader = _READERS[pack]
    assert reader is not None
    roles = reader.roles
    stored = []
    for way in (reader, None):
        store: Any = SimpleNamespace(submit=None, reads_trace=True)       # nothing commits here
        stage = AuditStage(store, Stats(), _checker(), batch_seconds=1e9, reader=way, roles=roles,
                           clock=lambda: 0.0)
        with patch("evtool.store.audit._now", lambda: "received"):     # the one wall-clock field
            stage.process([line], [], [])
        stored.append(({table: rows for table, rows in stage.rows.by_table.items() if rows},
                       stage.stats.events))
    assert stored[0] == stored[1], line
