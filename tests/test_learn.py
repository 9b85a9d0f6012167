"""evtool learn: a pack from a sample, judged by what it accepts, rejects and generates."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from evtool.cli.learn import write_pack
from evtool.core.learn import Learned
from tests.conftest import evtool_cmd, records, run

ROOT = Path(__file__).resolve().parent.parent
DOWNLOADS = ROOT / "examples" / "packs" / "downloads"


def _made(pack: str, n: int, seed: int, *extra: str) -> list[bytes]:
    return run(["gen", "--pack", pack, "--count", str(n), "--seed", str(seed), "--fast", "-q",
                *extra]).stdout.splitlines()


def _learn(tmp: Path, lines: list[bytes], *extra: str) -> tuple[Path, dict[str, Any]]:
    sample = tmp / "sample.ndjson"
    sample.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp / "learned"
    learned = run(["learn", str(sample), "--out", str(out), "--json", "--count", str(len(lines)), *extra])
    assert learned.returncode == 0, learned.stderr
    return out, json.loads(learned.stdout)


def _dead(pack: Path | str, lines: list[bytes]) -> list[bool]:
    """Per line, whether validate --pack makes it a dead letter (one output line per input)."""
    judged = records(run(["validate", "--pack", str(pack), "-q"], stdin=b"\n".join(lines) + b"\n").stdout)
    assert len(judged) == len(lines)
    return [r.get("kind") == "deadletter" for r in judged]


def _roles(report: dict[str, Any]) -> dict[str, Any]:
    return {role: said["field"] for role, said in report["roles"].items()}


def _mutations(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Breaks lab3's own validator rejects, each applied to one event."""
    payload = event["payload"]
    first_required = next(iter(payload))
    return [
        {k: v for k, v in event.items() if k != "event_id"},
        {**event, "region": "atlantida"},
        {**event, "timestamp": event["timestamp"].replace("Z", "+00:00")},
        {**event, "payload": "not an object"},
        {**event, "source": "weather.report"},
        {**event, "payload": {k: v for k, v in payload.items() if k != first_required}},
        {**event, "event_id": "event-42"},
        {**event, "schema_version": 1.0},
    ]


def test_learned_from_lab3s_traffic_it_speaks_lab3(tmp_path: Path) -> None:
    sample = _made("lab3", 3000, 1)
    out, report = _learn(tmp_path, sample)
    assert _roles(report) == {"id": "/event_id", "time": "/timestamp", "source": "/source",
                              "region": "/region", "payload": "/payload"}
    held_out = _made("lab3", 3000, 2)
    assert not any(_dead(out, held_out))
    made = run(["gen", "--pack", str(out), "--count", "2000", "--fast", "-q"]).stdout.splitlines()
    assert not any(_dead("lab3", made))                        # lab3's own rules take all of it
    broken = [orjson.dumps(m) for line in held_out[:100] for m in _mutations(orjson.loads(line))]
    assert all(_dead("lab3", broken))                          # each is a reject of lab3's
    assert sum(_dead(out, broken)) >= 0.95 * len(broken)


def test_learned_from_evtools_gen_it_judges_as_the_evtool_pack_does(tmp_path: Path) -> None:
    out, report = _learn(tmp_path, _made("evtool", 6000, 3))
    assert _roles(report)["source"] == "/source" and _roles(report)["region"] == "/region"
    corpus = _made("evtool", 3000, 4, "--invalid", "0.3")
    agree = sum(a == b for a, b in zip(_dead(out, corpus), _dead("evtool", corpus), strict=True))
    assert agree >= 0.95 * len(corpus)


def test_learned_from_the_download_monitor_it_has_no_id_type_or_region(tmp_path: Path) -> None:
    sample = _made(str(DOWNLOADS), 2000, 5)
    out, report = _learn(tmp_path, sample)
    assert _roles(report) == {"id": None, "time": "/timestamp", "source": None, "region": None,
                              "payload": ""}
    assert report["roles"]["time"]["time_zone"] == "UTC"
    monitors_own = json.loads((DOWNLOADS / "payloads" / "download.json").read_text())
    made = run(["gen", "--pack", str(out), "--count", "500", "--fast", "-q"]).stdout.splitlines()
    for line in made:
        jsonschema.validate(orjson.loads(line), monitors_own)
    counted = records(run(["aggregate", "--pack", str(out), "--window", "60", "-q"],
                          stdin=b"\n".join(made) + b"\n").stdout)
    assert sum(r["total"] for r in counted if r["kind"] == "window") == 500
    assert {r["region"] for r in counted if r["kind"] == "metric"} == {"all"}


def test_learn_skips_what_is_not_an_event_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    lines = [*_made("evtool", 300, 6), b"not json", b"[1, 2]", b'"text"', b"{broken"]
    out, report = _learn(tmp_path, lines)
    assert report["events"] == 300 and report["skipped"] == 4
    again = run(["learn", str(tmp_path / "sample.ndjson"), "--out", str(out)])
    assert again.returncode == 2 and b"--force" in again.stderr
    assert (out / "pack.json").is_file()
    nothing = run(["learn", "--out", str(tmp_path / "empty")], stdin=b"not json\n")
    assert nothing.returncode == 1 and b"no events" in nothing.stderr and b"Traceback" not in nothing.stderr


def test_learn_taps_an_exchange_and_takes_nothing_from_the_pipeline(tmp_path: Path, vhost: str) -> None:
    import pika

    out = tmp_path / "tapped"
    learner = subprocess.Popen(evtool_cmd("learn", "-i", f"{vhost}?exchange=events_exchange", "--count",
                                          "500", "--out", str(out), "--json"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not _tap_ready(vhost) and time.monotonic() < deadline:
        assert learner.poll() is None, learner.stderr.read() if learner.stderr else b""
        time.sleep(0.05)
    sent = run(["gen", "--count", "1500", "--seed", "7", "--fast", "-q", "-o", "amqp"],
               env={"EVTOOL_AMQP_URL": vhost})
    assert sent.returncode == 0, sent.stderr
    report_text, err = learner.communicate(timeout=120)
    assert learner.returncode == 0, err
    report = json.loads(report_text)
    assert report["events"] == 500 and set(report["sources"]) == {
        "security.incident", "survey.victimization", "migration.case"}
    conn = pika.BlockingConnection(pika.URLParameters(vhost))
    assert conn.channel().queue_declare("validator_queue", passive=True).method.message_count == 1500
    conn.close()


def _tap_ready(vhost: str) -> bool:
    """A private queue with its consumer, bound to events_exchange (learn's tap)."""
    name = vhost.rsplit("/", 1)[1]
    listed = subprocess.run(["rabbitmqctl", "-q", "list_bindings", "-p", name, "source_name",
                             "destination_name"], capture_output=True, text=True, timeout=60,
                            env={**os.environ}).stdout
    return any(line.startswith("events_exchange\tamq.gen-") for line in listed.splitlines())


@pytest.mark.parametrize("pack", ["cloudevents", "examples/packs/weather"])
def test_a_learned_pack_accepts_its_sample_and_gen_from_it_passes(tmp_path: Path, pack: str) -> None:
    sample = _made(str(ROOT / pack) if "/" in pack else pack, 1500, 8)
    out, _report = _learn(tmp_path, sample)
    assert not any(_dead(out, sample))
    made = run(["gen", "--pack", str(out), "--count", "1000", "--fast", "-q"]).stdout.splitlines()
    assert len(made) == 1000 and not any(_dead(out, made))


def _labelled(sources: list[str], n: int = 300, seed: int = 3) -> list[bytes]:
    """Events whose `kind` predicts the payload's fields, one field name per kind."""
    rng = random.Random(seed)
    return [orjson.dumps({"event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                          "timestamp": f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}Z",
                          "kind": sources[k], "region": rng.choice(["x", "y"]),
                          "payload": {f"f{k}": rng.randint(1, 9)}})
            for i, k in ((i, rng.randrange(len(sources))) for i in range(n))]


def test_source_values_that_are_paths_write_nothing_outside_the_pack(tmp_path: Path) -> None:
    """A sample is someone else's traffic: its source values once named the payload files, so
    `../../x` wrote x.json wherever it pointed."""
    up = "../" * 40 + str(tmp_path).lstrip("/")
    out, report = _learn(tmp_path, _labelled([f"{up}/pwned_a", f"{up}/pwned_b", "plain"]))
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.json")}
    assert written == {Path("learned/pack.json"), Path("learned/envelope.json"),
                       Path("learned/payloads/learned.json")}
    assert report["roles"]["source"]["field"] is None
    assert "cannot name a file in payloads/" in report["roles"]["source"]["why"]
    assert not any(_dead(out, _labelled(["a", "b"])))          # one source, judged by one schema
    (tmp_path / "case").mkdir()
    collide = _learn(tmp_path / "case", _labelled(["Order", "order", "other"]))[1]
    assert "differ only in case" in collide["roles"]["source"]["why"]


def test_keys_holding_slash_and_tilde_are_roles_as_escaped_pointers(tmp_path: Path) -> None:
    """A key `k/ind` is the pointer `/k~1ind`: learn read the pointer back as a key and stopped
    with an internal error (KeyError)."""
    rng = random.Random(5)
    lines = [orjson.dumps({"event/id": str(uuid.UUID(int=rng.getrandbits(128))),
                           "t~s": f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}Z",
                           "k/ind": kind, "re/gion": rng.choice(["x", "y"]),
                           "da~ta": {f"f/{kind}": rng.randint(1, 9)}})
             for i, kind in ((i, rng.choice(["a", "b", "c"])) for i in range(300))]
    out, report = _learn(tmp_path, lines)
    assert _roles(report) == {"id": "/event~1id", "time": "/t~0s", "source": "/k~1ind",
                              "region": "/re~1gion", "payload": "/da~0ta"}
    assert "/da~0ta/f~1a (a)" in report["fields"]
    assert not any(_dead(out, lines))
    made = run(["gen", "--pack", str(out), "--count", "300", "--fast", "-q"]).stdout.splitlines()
    assert len(made) == 300 and not any(_dead(out, made))
    counted = records(run(["aggregate", "--pack", str(out), "--window", "3600", "-q"],
                          stdin=b"\n".join(lines) + b"\n").stdout)
    assert {s for r in counted if r["kind"] == "window" for s in r["by_source"]} == {"a", "b", "c"}


def test_force_replaces_a_pack_and_never_a_folder_holding_anything_else(tmp_path: Path) -> None:
    """`--out . --force` removed the folder it named, the sample in it included."""
    sample = _made("evtool", 200, 4)
    out, _ = _learn(tmp_path, sample)
    (tmp_path / "sample.ndjson").write_bytes(b"\n".join(_labelled(["p", "q"])) + b"\n")
    again = run(["learn", str(tmp_path / "sample.ndjson"), "--out", str(out), "--force", "-q"])
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (out / "payloads").iterdir()) == ["p.json", "q.json"]
    (out / "notes.txt").write_text("mine")
    kept = run(["learn", str(tmp_path / "sample.ndjson"), "--out", str(out), "--force", "-q"])
    assert kept.returncode == 2 and b"holds notes.txt, which is no pack's file" in kept.stderr
    assert (out / "notes.txt").read_text() == "mine" and (out / "payloads" / "p.json").is_file()
    here = subprocess.run(evtool_cmd("learn", "sample.ndjson", "--out", ".", "--force", "-q"),
                          cwd=tmp_path, capture_output=True, timeout=60)
    assert here.returncode == 2 and b"the folder evtool runs in" in here.stderr
    assert (tmp_path / "sample.ndjson").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # nothing staged left


def test_a_pack_that_does_not_load_leaves_the_one_it_would_replace(tmp_path: Path) -> None:
    out, _ = _learn(tmp_path, _made("evtool", 200, 4))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    broken = Learned({"name": "x", "sources": {"a": 1.0}}, None, {"b": {"type": "object"}})
    with pytest.raises(ValueError, match=f"{out}/envelope.json: missing"):
        write_pack(out, broken)
    with pytest.raises(ValueError, match="is no file name"):
        write_pack(out, Learned({"name": "x"}, None, {"../x": {"type": "object"}}))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _epoch_events(start: int, n: int = 300, deep: int = 0) -> list[bytes]:
    """Events with their time as epoch seconds from `start`, kind a or b, a payload `deep` deep."""
    nested: Any = 1
    for _ in range(deep):
        nested = {"x": nested}
    return [orjson.dumps({"id": str(uuid.UUID(int=(start << 20) + i)), "at": start + i, "kind": "ab"[i % 2],
                          "body": {f"only_{'ab'[i % 2]}": i % 7, "nest": nested}})
            for i in range(n)]


def test_epoch_times_are_not_bounded_by_the_sample_span(tmp_path: Path) -> None:
    """The sample's first and last instant became the time's minimum and maximum: every later
    event of the same producer was a dead letter, and gen (which starts now) could make none."""
    a_year_ago = int(time.time()) - 365 * 86400
    out, report = _learn(tmp_path, _epoch_events(a_year_ago))
    assert report["roles"]["time"]["field"] == "/at"
    later = _epoch_events(int(time.time()), 10)
    assert not any(_dead(out, later))
    made = run(["gen", "--pack", str(out), "--count", "200", "--fast", "-q"])
    assert made.returncode == 0, made.stderr
    assert not any(_dead(out, made.stdout.splitlines()))


def test_a_sample_nested_deeper_than_a_pack_holds_still_makes_one(tmp_path: Path) -> None:
    """Objects 200 deep made payload schemas deeper than a pack may nest (64): learn ended
    saying the pack it wrote did not load. Past 16 levels only the type is learned now."""
    sample = _epoch_events(int(time.time()), deep=200)
    out, _ = _learn(tmp_path, sample)
    assert not any(_dead(out, sample))
    made = run(["gen", "--pack", str(out), "--count", "100", "--fast", "-q"])
    assert made.returncode == 0, made.stderr
    assert not any(_dead(out, made.stdout.splitlines()))
