"""wire.json: a pack's broker side as data, held to its shipped format, shown, and run."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import pytest

from evtool.core.pack import PackError
from evtool.schemas import builtin_packs, load_pack, wire_format
from tests.conftest import consuming, evtool_cmd, records, run
from tests.test_packs import write_pack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples" / "packs").iterdir() if (p / "wire.json").is_file())
DOWNLOADS = ROOT / "examples" / "packs" / "downloads"
SOURCE = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
LAB3_DAY = "2026-12-02"


@pytest.mark.parametrize("where", [*builtin_packs(), *map(str, EXAMPLES)])
def test_every_shipped_wire_json_is_in_the_format_it_documents(where: str) -> None:
    """Shipped files are not checked as they load (a stage would pay 90 ms to compile the
    format): this holds them to it instead."""
    check = fastjsonschema.compile(wire_format())
    folder = ROOT / "evtool" / "schemas" / "packs" / where if where in builtin_packs() else Path(where)
    own = folder / "wire.json"
    if own.is_file():
        check(json.loads(own.read_text()))
    check(dict(load_pack(where).wire.document))


def _pack_with_wire(tmp_path: Path, wire: Any) -> Path:
    return write_pack(tmp_path / "p", {
        "pack.json": {"name": "p", "sources": {"s": 1}},
        "envelope.json": {"type": "object"}, "payloads/s.json": SOURCE,
        "wire.json": wire})


@pytest.mark.parametrize(("wire", "named"), [
    ({"exchanges": {"x": "topic"}, "stages": {"gen": {"out": {"publish": "nowhere"}}}},
     "stages.gen.out.publish: 'nowhere' is not one of 'exchanges'"),
    ({"exchanges": {"x": "carrier-pigeon"}}, "exchanges.x"),
    ({"stages": {"gen": {"in": {"consume": ["q"]}}}}, "stages.gen"),
    ({"stages": {"validate": {"in": {"consume": ["q"], "bind": [{"queue": "q"}]}}}},
     "stages.validate.in.bind[0]"),
    ({"records": {"window": {"total_processed": {"from": "/total", "as": "eval"}}}},
     "records.window.total_processed"),
    ({"foreign": [{"kind": "window", "when": {"has": ["total"]}, "record": {}}]},
     "foreign[0].when.has"),
    ({"replay": {"sqlite": {"table": "events; DROP TABLE trace", "fields": {"event_id": "id"}}}},
     "replay.sqlite.table"),
    ({"dead_letters": {"routing_key": "r"}}, "dead_letters"),
    ({"dead_letters": {"publish": "", "body": "base64"}}, "dead_letters.body"),
    ([1, 2], "must be a JSON object"),
    # 200 characters (the format's limit is 255) but 400 bytes: past what AMQP carries
    ({"stages": {"validate": {"in": {"consume": ["\u00e9" * 200]}}}}, "stages.validate.in: '\u00e9"),
    ({"routes": {"window": "\u00e9" * 200}}, "routes: '\u00e9"),
])
def test_a_broken_wire_json_is_a_usage_error_naming_file_and_field(tmp_path: Path, wire: Any,
                                                                     named: str) -> None:
    folder = _pack_with_wire(tmp_path, wire)
    for args in (["validate", "--pack", str(folder)], ["--show-pack", str(folder)]):
        result = run(args, stdin=b"")
        assert result.returncode == 2, result.stderr
        said = result.stderr.decode()
        assert f"{folder}/wire.json" in said and named in said and "Traceback" not in said


def test_a_wire_json_that_passed_its_format_is_not_checked_again_until_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiling the format costs a stage 55 ms at start: a passed document is remembered in
    the user's cache; a changed one is checked again, a failing one never remembered."""
    import evtool.schemas as loader
    from evtool.core.wirespec import check_format as check

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checked: list[str] = []

    def counted(doc: Any, schema: Any, where: str) -> None:
        checked.append(where)
        check(doc, schema, where)

    monkeypatch.setattr(loader, "check_format", counted)
    exchanges = loader._default_wire()["exchanges"]
    folder = _pack_with_wire(tmp_path, {"exchanges": {**exchanges, "x": "topic"}})
    for _ in range(3):
        load_pack(str(folder))
    assert len(checked) == 1 and len(list((tmp_path / "cache" / "evtool" / "wire-passed").iterdir())) == 1
    (folder / "wire.json").write_text(json.dumps({"exchanges": {**exchanges, "x": "fanout"}}))
    load_pack(str(folder))
    assert len(checked) == 2
    (folder / "wire.json").write_text(json.dumps({"exchanges": {**exchanges, "x": "carrier-pigeon"}}))
    for _ in range(2):
        with pytest.raises(PackError, match=r"exchanges\.x"):
            load_pack(str(folder))
    assert len(checked) == 4 and len(list((tmp_path / "cache" / "evtool" / "wire-passed").iterdir())) == 2
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "wire.json"))       # a cache it cannot write
    with pytest.raises(PackError, match=r"exchanges\.x"):
        load_pack(str(folder))


def test_show_pack_shows_the_wire_a_pack_runs_on() -> None:
    lab3 = run(["--show-pack", "lab3"]).stdout.decode()
    assert "wire (from pack lab3: wire.json)" in lab3
    assert "validate in: consume validator_input_queue" in lab3
    assert "dead letters (record): publish to dlq_exchange, key deadletter.validation" in lab3
    assert "a metric also carries: metrics, run_id" in lab3
    plain = run(["--show-pack", "cloudevents"]).stdout.decode()
    assert "wire (from pack cloudevents: wire.json)" in plain
    assert "content type: application/cloudevents+json" in plain
    downloads = run(["--show-pack", str(DOWNLOADS)]).stdout.decode()
    assert "gen out: publish to (the default exchange), key arrivals; declares arrivals" in downloads
    assert "dead letters (raw): publish to (the default exchange), key rejects" in downloads


def _lab3_records(events: list[dict]) -> tuple[dict, dict, dict]:
    """A window summary, a metric and a dead letter in lab3's own shapes (no kind)."""
    stats: dict[str, dict[str, int]] = {}
    for e in events:
        by = stats.setdefault(e["region"], {})
        by[e["source"]] = by.get(e["source"], 0) + 1
    summary = {"type": "window_summary", "window_start_iso": "2026-12-02T10:00:00",
               "window_end_iso": "2026-12-02T10:01:00", "total_processed": len(events),
               "stats_by_region": stats}
    region = sorted(stats)[0]
    metric = {"metric_id": "4b0f7d6e-0d1e-4c55-9a54-3f0c1d5e2a10", "date": LAB3_DAY, "region": region,
              "metrics": stats[region], "input_event_ids": [], "run_id": "default"}
    letter = {"original_event": {"event_id": "x"}, "error": "'region' is a required property",
              "failed_at": "2026-12-02T10:00:05Z", "service": "validator"}
    return summary, metric, letter


def test_validate_on_lab3s_wire_forwards_lab3s_own_derived_shapes() -> None:
    events = [orjson.loads(x) for x in run(["gen", "--pack", "lab3", "--count", "60", "--fast",
                                           "--seed", "2", "-q"]).stdout.splitlines()]
    shapes = _lab3_records(events)
    lines = b"".join(orjson.dumps(r) + b"\n" for r in shapes)
    judged = run(["validate", "--pack", "lab3", "-q"], stdin=lines)
    assert judged.returncode == 0 and judged.stdout == lines          # forwarded byte for byte
    elsewhere = records(run(["validate", "-q"], stdin=lines).stdout)   # evtool's wire: no such shapes
    assert [r["kind"] for r in elsewhere] == ["deadletter"] * 3


def test_a_foreign_shape_that_does_not_hold_together_is_a_schema_dead_letter() -> None:
    summary, metric, _letter = _lab3_records([{"region": "sur", "source": "migration.case"}])
    broken = [{**summary, "stats_by_region": {"sur": {"migration.case": -1}}},
              {**summary, "window_end_iso": "yesterday"},
              {**metric, "metrics": {"migration.case": "one"}},
              {**metric, "date": "02/12/2026"}]
    judged = run(["validate", "--pack", "lab3", "-q"],
                 stdin=b"".join(orjson.dumps(r) + b"\n" for r in broken))
    letters = records(judged.stdout)
    assert [r["kind"] for r in letters] == ["deadletter"] * 4
    assert all(r["reason"] == "schema" for r in letters)
    assert "stats_by_region" in letters[0]["error"] and "window_end_iso" in letters[1]["error"]
    assert "metrics" in letters[2]["error"] and "date" in letters[3]["error"]


def test_an_evtool_metric_whose_lab3_fields_disagree_with_its_own_is_a_dead_letter() -> None:
    made = run(["gen", "--pack", "lab3", "--count", "200", "--fast", "--seed", "5", "-q"]).stdout
    counted = run(["aggregate", "--pack", "lab3", "-q", "--window", "60"], stdin=made).stdout
    derived = records(counted)
    metric = next(r for r in derived if r["kind"] == "metric")
    window = next(r for r in derived if r["kind"] == "window")
    assert metric["metrics"] == metric["counts"] and window["total_processed"] == window["total"]
    forged = {**metric, "metrics": {**metric["metrics"], "migration.case": 10**6}}
    forged_window = {**window, "stats_by_region": {}}
    judged = records(run(["validate", "--pack", "lab3", "-q"], stdin=counted + orjson.dumps(forged)
                         + b"\n" + orjson.dumps(forged_window) + b"\n").stdout)
    letters = [r for r in judged if r["kind"] == "deadletter"]
    assert len(judged) == len(derived) + 2 and len(letters) == 2
    assert "metrics" in letters[0]["error"] and "disagrees" in letters[0]["error"]
    assert "stats_by_region" in letters[1]["error"]


def test_the_download_monitors_wire_json_is_its_broker_side(vhost: str) -> None:
    """No URL options: gen publishes to queue arrivals on the default exchange, validate reads it
    and sends the rejects, as the bytes that came (the pack's default body), to queue rejects."""
    import pika

    gen = ["gen", "--pack", str(DOWNLOADS), "--count", "1000", "--seed", "8", "--invalid", "0.05",
           "--start", "2026-12-02T10:00:00Z", "--fast", "-q"]
    made = run(gen).stdout.splitlines()
    env = {**os.environ, "EVTOOL_AMQP_URL": vhost, "EVTOOL_PACK": str(DOWNLOADS)}
    validate = subprocess.Popen(evtool_cmd("validate", "-i", "amqp", "-o", "amqp"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        consuming(vhost, {"arrivals": 1})
        sent = run([*gen, "-o", "amqp"], env={"EVTOOL_AMQP_URL": vhost})
        assert sent.returncode == 0, sent.stderr
        conn = pika.BlockingConnection(pika.URLParameters(vhost))
        ch = conn.channel()
        rejects: list[tuple[bytes, dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            passed = ch.queue_declare("aggregator_queue", passive=True).method.message_count
            waiting = ch.queue_declare("rejects", passive=True).method.message_count
            if passed + len(rejects) + waiting >= len(made) and not waiting:
                break
            method, props, body = ch.basic_get("rejects", auto_ack=True)
            if method is not None:
                rejects.append((body, props.headers))
            else:
                conn.sleep(0.05)
        conn.close()
    finally:
        validate.terminate()
        validate.wait(timeout=60)
    assert 20 < len(rejects) < 200 and {body for body, _ in rejects} <= set(made)
    assert passed + len(rejects) == len(made)
    assert all(h["x-evtool-stage"] == "validate" and h["x-evtool-reason"] and h["x-evtool-error"]
               for _, h in rejects)
