"""aggregate against the independent reference, and the order/duplicates property."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.generator import GenConfig, Generator
from evtool.core.records import name_id
from evtool.core.stats import Stats
from evtool.schemas import load_pack
from tests.conftest import checker
from tests.reference import reference, windows_of

ROOT = Path(__file__).resolve().parent.parent

T0 = 1_795_000_000.0
REGIONS = ("maule", "biobio", "aysen")
SOURCES = ("security.incident", "migration.case")


def aggregate(lines: list[bytes], **cfg) -> tuple[list[dict], Stats]:
    stage = AggregateStage(AggregateConfig(**cfg), Stats(), checker())
    out: list[bytes] = []
    for start in range(0, len(lines), 7):           # odd batch sizes: state spans batches
        stage.process(lines[start:start + 7], out, out)
    stage.finish(out, out)
    return [orjson.loads(x) for x in out], stage.stats


def event(at: float, rng: random.Random) -> bytes:
    stamp = datetime.fromtimestamp(at, tz=timezone.utc).isoformat()
    return orjson.dumps({
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "timestamp": stamp,
        "region": rng.choice(REGIONS), "source": rng.choice(SOURCES), "schema_version": "1.0",
        "correlation_id": str(uuid.UUID(int=rng.getrandbits(128))), "payload": {},
    })


def test_matches_reference_on_generator_output_with_disorder_and_duplicates() -> None:
    cfg = GenConfig(start_us=int(T0 * 1e6), pack=load_pack(), count=5000, seed=4, rate=50, duplicates=0.05,
                    out_of_order=0.2, max_delay=3)
    lines = [line for _, line, _ in Generator(cfg)]
    for lateness in (0, 1, 3):
        got, stats = aggregate(lines, window=2, lateness=lateness)
        want = reference(lines, window=2, lateness=lateness)
        assert windows_of(got) == want["windows"]
        assert stats.duplicates == want["duplicates"]
        assert stats.late == want["late"]
        assert sum(1 for r in got if r.get("kind") == "deadletter") == want["late"]
    assert want["late"] == 0 and want["duplicates"] > 100   # lateness 3 covers a 3 s max delay


def test_late_events_are_dead_letters_never_dropped() -> None:
    rng = random.Random(1)
    lines = [event(T0 + 12, rng), event(T0 + 1, rng)]   # the second arrives after [T0, T0+5) closed
    got, stats = aggregate(lines, window=5)
    dead = [r for r in got if r.get("kind") == "deadletter"]
    assert stats.late == 1 and len(dead) == 1
    assert dead[0]["reason"] == "late" and dead[0]["raw"] == lines[1].decode()
    assert dead[0]["event_id"] == orjson.loads(lines[1])["event_id"]


def test_window_and_metric_records() -> None:
    rng = random.Random(2)
    lines = [event(T0 + i * 0.5, rng) for i in range(30)]
    got, _ = aggregate(lines, window=5)
    windows = [r for r in got if r["kind"] == "window"]
    metrics = [r for r in got if r["kind"] == "metric"]
    assert [w["window_start"] for w in windows] == sorted(w["window_start"] for w in windows)
    assert sum(w["total"] for w in windows) == 30
    for w in windows:
        assert w["window_start"].endswith("Z") and w["window_end"].endswith("Z")
        mine = [m for m in metrics if m["window_start"] == w["window_start"]]
        assert {m["region"] for m in mine} == set(w["by_region"])
        assert sorted(i for m in mine for i in m["input_event_ids"]) == w["event_ids"]
        for m in mine:
            assert m["total"] == sum(m["counts"].values()) == w["by_region"][m["region"]]
            assert m["date"] == m["window_start"][:10] and m["window_seconds"] == 5
            assert m["metric_id"] == name_id("metric", m["region"], m["window_start"], 5)


def test_forward_passes_counted_events_and_derived_records_but_not_duplicates() -> None:
    rng = random.Random(3)
    one = event(T0, rng)
    marker = b'{"kind":"deadletter","stage":"validate","reason":"json","error":"x","raw":"y"}'
    got, stats = aggregate([one, marker, one], window=5, forward=True)
    assert [r.get("kind") for r in got] == [None, "deadletter", "window", "metric"]
    assert stats.duplicates == 1


def test_recomputation_gives_the_same_ids_and_output() -> None:
    cfg = GenConfig(start_us=int(T0 * 1e6), pack=load_pack(), count=2000, seed=9, duplicates=0.02)
    lines = [line for _, line, _ in Generator(cfg)]
    assert aggregate(lines, window=5)[0] == aggregate(lines, window=5)[0]


def test_unreadable_and_incomplete_events_are_dead_letters() -> None:
    lines = [b"not json", b"[1]", b'{"event_id": "x"}', b"   ",
             b'{"event_id":"a","region":"r","source":"s","timestamp":"2026-01-01T00:00:00"}']
    got, stats = aggregate(lines, window=5)
    assert [r["reason"] for r in got] == ["json", "schema", "schema", "schema"]
    assert "timestamp" in got[2]["error"] and "offset" in got[3]["error"]
    assert stats.in_ == 4                                 # the blank line is not a record


@st.composite
def disordered_stream(draw):
    """Events in event-time order, delivered with delays within the lateness bound, plus
    exact duplicates placed anywhere after their original."""
    lateness = draw(st.sampled_from([0.0, 0.5, 2.0, 7.0]))
    n = draw(st.integers(min_value=1, max_value=120))
    seed = draw(st.integers(min_value=0, max_value=2**32))
    rng = random.Random(seed)
    at, items = T0, []
    for _ in range(n):
        at += draw(st.sampled_from([0.0, 0.01, 0.3, 1.0, 4.9, 11.0]))
        arrival = at + rng.random() * lateness
        items.append((arrival, event(at, rng)))
    items.sort(key=lambda x: x[0])
    lines = [line for _, line in items]
    for _ in range(draw(st.integers(min_value=0, max_value=n))):
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(i + 1, len(lines) + 1), lines[i])
    return lines, lateness


@settings(max_examples=150, deadline=None)
@given(disordered_stream(), st.sampled_from([1.0, 2.5, 5.0]))
def test_disorder_within_lateness_and_duplicates_do_not_change_windows(case, window) -> None:
    lines, lateness = case
    got, stats = aggregate(lines, window=window, lateness=lateness)
    unique = {orjson.loads(x)["event_id"]: x for x in lines}
    ordered = sorted(unique.values(), key=lambda x: orjson.loads(x)["timestamp"])
    want, _ = aggregate(ordered, window=window, lateness=lateness)
    assert windows_of(got) == windows_of(want)
    assert stats.late == 0
    assert stats.duplicates == len(lines) - len(unique)
    assert windows_of(got) == reference(lines, window, lateness)["windows"]


def test_input_is_safe_to_ack_only_once_its_windows_are_out() -> None:
    rng = random.Random(6)
    stage = AggregateStage(AggregateConfig(window=5), Stats(), checker())
    out: list[bytes] = []
    stage.process([event(T0 + 1, rng)], out, out)          # batch 1 counts into [T0, T0+5)
    stage.process([event(T0 + 2, rng)], out, out)          # batch 2 as well
    assert stage.unsafe_batches == 2 and out == []
    stage.process([event(T0 + 6, rng)], out, out)          # closes [T0, T0+5), opens the next
    assert [orjson.loads(x)["kind"] for x in out][:1] == ["window"]
    assert stage.unsafe_batches == 1                      # batches 1 and 2 may be acked now
    stage.finish(out, out)
    assert stage.unsafe_batches == 0


def test_at_a_stop_only_lines_counted_into_open_windows_must_come_again() -> None:
    rng = random.Random(7)
    stage = AggregateStage(AggregateConfig(window=5), Stats(), checker())
    early, dup, opens, after = event(T0 + 1, rng), event(T0 + 2, rng), event(T0 + 6, rng), event(T0 + 7, rng)
    late = event(T0 + 0.5, rng)
    copy = orjson.loads(opens)
    copy["timestamp"] = datetime.fromtimestamp(T0 + 8, tz=timezone.utc).isoformat()
    lines = [early, dup, dup, opens, late, after, b"not json", orjson.dumps(copy)]
    out: list[bytes] = []
    stage.process(lines, out, out)
    assert stage.stats.late == 1 and stage.stats.duplicates == 2
    # the first window went out; a copy of an id behind its counted copy is dropped again on restart
    assert stage.still_open(lines) == [opens, after, orjson.dumps(copy)]


def test_lines_read_without_parsing_count_exactly_as_parsed_ones() -> None:
    """aggregate reads gen-shaped lines through the pack's whole-line expression; the answer must
    be the parsing path's, duplicates, late events, odd times and duplicate keys included."""
    from evtool.core.linereader import field_reader
    from tests.conftest import gen_lines

    pack = load_pack()
    reader = field_reader(pack)
    assert reader is not None
    lines = gen_lines(4000, 9, "--duplicates", "0.05", "--out-of-order", "0.1", "--max-delay", "6",
                      "--invalid", "0.02", "--rate", "40").splitlines()
    first = lines[0]
    lines += [first.replace(b'"region":', b'"region":"maule","region":', 1),      # a duplicate key
              first.replace(b"T", b"t", 1).replace(b'"event_id":"', b'"event_id":"f', 1)[:-1] + b"}",
              first.replace(b"+00:00", b"+01:00").replace(b'"event_id":"', b'"event_id":"e', 1)]
    upper = orjson.loads(lines[1])["event_id"].upper().encode()          # the same id: UUIDs fold
    lines.insert(2, lines[1].replace(orjson.loads(lines[1])["event_id"].encode(), upper))
    outputs = []
    for read in (reader, None):
        stage = AggregateStage(AggregateConfig(forward=True), Stats(), checker(), read)
        out: list[bytes] = []
        for at in range(0, len(lines), 700):
            stage.process(lines[at:at + 700], out, out)
        stage.finish(out, out)
        outputs.append((out, stage.stats.summary(1.0)))
    assert outputs[0] == outputs[1] and any(b'"reason":"schema"' in x for x in outputs[0][0])
    metrics = [x for x in outputs[0][0] if b'"kind":"metric"' in x]
    assert not any(upper in x for x in metrics)                          # a duplicate, not counted
    assert sum(x.count(upper.lower()) for x in metrics) == 1


READ_PACKS = ["evtool", "lab3", "cloudevents", "examples/packs/weather"]


@pytest.mark.parametrize("name", READ_PACKS)
def test_every_pack_with_its_own_ids_is_read_without_parsing_and_counts_as_parsed(name: str) -> None:
    """The whole-line reader is compiled from any pack whose roles are fields of the event: it
    reads (nearly) every line gen writes, and the answer is the parsing path's to the byte."""
    from evtool.core.fields import LineFields
    from evtool.core.linereader import field_reader
    from tests.conftest import gen_lines

    pack = load_pack(str(ROOT / name) if "/" in name else name)
    reader = field_reader(pack)
    assert reader is not None, f"{name} gives no reader"
    lines = gen_lines(3000, 4, "--pack", pack.name if "/" not in name else str(ROOT / name),
                      "--duplicates", "0.05", "--out-of-order", "0.1", "--max-delay", "6",
                      "--invalid", "0.03", "--rate", "40").splitlines()
    read = LineFields(reader)(lines)
    assert sum(got is not None for got in read) >= 0.9 * len(lines)
    read_so, parsed = both_ways(pack, reader, lines)
    assert read_so == parsed
    assert any(b'"kind":"metric"' in x for x in read_so[0])


def both_ways(pack: Any, reader: Any, lines: list[bytes]) -> list[tuple[list[bytes], Any]]:
    """aggregate's output and summary over `lines` read by `reader`, then by parsing each line."""
    from evtool.core.derived import DerivedChecker
    from evtool.schemas import derived_schemas

    outputs = []
    for way in (reader, None):
        cfg = AggregateConfig(forward=True, roles=pack.roles, wire=pack.wire)
        stage = AggregateStage(cfg, Stats(), DerivedChecker(derived_schemas(), pack.wire), way)
        out: list[bytes] = []
        for at in range(0, len(lines), 500):
            stage.process(lines[at:at + 500], out, out)
        stage.finish(out, out)
        outputs.append((out, stage.stats.summary(1.0)))
    return outputs


@pytest.mark.parametrize(("name", "id_pattern", "time_pattern", "quick"), [
    ("evtool", None, None, True),
    ("lab3", None, None, True),
    ("lab3", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-z]{12}$",
     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[A-Z]$", False),
    ("lab3", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}x?$",
     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z?$", False),
])
def test_ids_and_times_a_schema_spells_as_fixed_places_are_read_without_a_second_look(
        tmp_path: Path, name: str, id_pattern: str | None, time_pattern: str | None,
        quick: bool) -> None:
    """lab3's schema spells its UUIDs and 'Z' times as patterns of fixed places: the reader knows
    every match is a UUID and a time shaped_us reads, and skips the checks a free id or time
    needs (a fifth of aggregate's reading of lab3); a place outside those shapes keeps them.
    Either way the answer is the parsing path's."""
    import json
    import shutil

    from evtool.core.linereader import field_reader
    from tests.conftest import gen_lines

    base = ROOT / "evtool" / "schemas" / "packs" / name
    folder = shutil.copytree(base, tmp_path / "pack")
    if id_pattern is not None:
        envelope = json.loads((folder / "envelope.json").read_text())
        envelope["properties"]["event_id"]["pattern"] = id_pattern
        envelope["properties"]["timestamp"]["pattern"] = time_pattern
        (folder / "envelope.json").write_text(json.dumps(envelope))
    pack = load_pack(str(folder))
    reader = field_reader(pack)
    assert reader is not None
    assert (reader.uuid_ids, reader.exact_time) == (quick, quick)
    lines = gen_lines(1500, 4, "--pack", name, "--duplicates", "0.05", "--out-of-order", "0.1",
                      "--invalid", "0.03", "--rate", "40").splitlines()
    lines += [lines[0].replace(b"T", b"t", 1), lines[1].replace(b"Z", b"+00:00", 1),
              lines[2].replace(b'"event_id":"', b'"event_id":"A', 1)
              .replace(b'","timestamp"', b'X","timestamp"')]
    read_so, parsed = both_ways(pack, reader, lines)
    assert read_so == parsed


def test_an_upper_case_uuid_is_counted_folded_by_a_pack_whose_ids_are_free_strings() -> None:
    """CloudEvents' ids are any string, so its reader takes no id to be a UUID: an id that is one
    in upper case is still the lower-case id the parsing path, dedupe and audit use, in every
    metric's trace as in the window's."""
    from evtool.core.linereader import field_reader
    from tests.conftest import gen_lines

    pack = load_pack("cloudevents")
    reader = field_reader(pack)
    assert reader is not None and not reader.uuid_ids
    lines = gen_lines(400, 6, "--pack", "cloudevents", "--rate", "40").splitlines()
    ids = [orjson.loads(line)["id"] for line in lines]
    lines = [line.replace(ids[at].encode(), ids[at].upper().encode()) if at % 2 else line
             for at, line in enumerate(lines)]
    lines.append(lines[1].replace(ids[1].upper().encode(), ids[1].encode()))     # a duplicate
    read_so, parsed = both_ways(pack, reader, lines)
    assert read_so == parsed
    traced = [i for x in read_so[0] if b'"kind":"metric"' in x
              for i in orjson.loads(x)["input_event_ids"]]
    assert sorted(traced) == sorted(ids)


def test_no_reader_where_a_matched_line_could_be_a_derived_record(tmp_path: Path) -> None:
    """The stages pass a derived record on rather than count it: a pack whose event lines could
    be one (a `kind` among the envelope's fields, or a foreign shape asking only for fields an
    event has) gets no whole-line reader, so every line is judged the parsing way."""
    import json
    import shutil

    from evtool.core.linereader import field_reader

    base = ROOT / "evtool" / "schemas" / "packs" / "lab3"
    assert field_reader(load_pack(str(base))) is not None
    shaped = shutil.copytree(base, tmp_path / "shaped")
    wire = json.loads((shaped / "wire.json").read_text())
    wire["foreign"][1]["when"] = {"has": ["/region", "/source"], "lacks": ["/nothing"]}
    (shaped / "wire.json").write_text(json.dumps(wire))
    assert field_reader(load_pack(str(shaped))) is None
    kinded = shutil.copytree(base, tmp_path / "kinded")
    envelope = json.loads((kinded / "envelope.json").read_text())
    envelope["properties"]["kind"] = {"type": "string"}
    (kinded / "envelope.json").write_text(json.dumps(envelope))
    assert field_reader(load_pack(str(kinded))) is None
