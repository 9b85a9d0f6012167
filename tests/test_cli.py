"""The command line as users meet it: real processes, real pipes, exit codes and signals."""

from __future__ import annotations

import functools
import signal
import subprocess
import time

import click
import orjson
import pytest
from click.testing import CliRunner

from evtool.cli import cli
from evtool.core.validation import EventValidator
from tests.conftest import (
    START,
    evtool_cmd,
    gen_lines,
    handles_signals,
    pack_validator,
    pending,
    pipeline,
    records,
    run,
)
from tests.reference import reference, windows_of


def test_three_stage_pipe_counts_every_distinct_valid_event() -> None:
    gen = ["gen", "--count", "20000", "--seed", "3", "--start", START, "--fast",
           "--duplicates", "0.03", "--invalid", "0.02", "--out-of-order", "0.05", "--max-delay", "1"]
    out, errs = pipeline(gen, ["validate"], ["aggregate", "--lateness", "1"])
    got = records(out)
    raw = gen_lines(20000, 3, "--duplicates", "0.03", "--invalid", "0.02", "--out-of-order", "0.05",
                    "--max-delay", "1")
    valid = [x for x in raw.splitlines() if _valid(x)]
    want = reference(valid, 5, 1)
    assert windows_of(got) == want["windows"]
    dead = [r for r in got if r.get("kind") == "deadletter"]
    assert 300 < len(dead) < 500 and all(r["stage"] == "validate" for r in dead)
    assert b"evtool validate: 20000 in" in errs[1]
    assert b"duplicates" in errs[2] and b"records/s" in errs[2]


@functools.cache
def _validator() -> EventValidator:
    return pack_validator()


def _valid(line: bytes) -> bool:
    """The in-process validator's verdict, to know which generated lines should be counted."""
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return _validator().error(ev) is None


def test_files_in_and_out_and_dead_letters_apart(tmp) -> None:
    src = tmp / "in.ndjson"
    src.write_bytes(gen_lines(500, 2, "--invalid", "0.1"))
    result = run(["validate", "-i", str(src), "-o", str(tmp / "ok.ndjson"),
                  "--dead-letter", str(tmp / "bad.ndjson")])
    assert result.returncode == 0
    ok, bad = records((tmp / "ok.ndjson").read_bytes()), records((tmp / "bad.ndjson").read_bytes())
    assert len(ok) + len(bad) == 500 and 20 < len(bad) < 90
    assert all("kind" not in r for r in ok) and all(r["kind"] == "deadletter" for r in bad)
    assert f"{len(ok)} out, {len(bad)} dead letters".encode() in result.stderr


def test_closed_pipe_downstream_ends_quietly() -> None:
    shell = f"{' '.join(evtool_cmd('gen', '--fast'))} | head -n 5"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5
    assert b"Traceback" not in result.stderr and b"Broken pipe" not in result.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_a_live_stage_flushing_open_windows(sig, code) -> None:
    agg = subprocess.Popen(evtool_cmd("aggregate", "--window", "3600", "--forward"), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert agg.stdin is not None and agg.stdout is not None
    agg.stdin.write(gen_lines(50, 1))
    agg.stdin.flush()
    # what a stage has taken off a pipe but not yet counted (a read-ahead child's batch) ends
    # with it: the signal comes once all 50 are counted, which --forward shows
    forwarded = [agg.stdout.readline() for _ in range(50)]
    agg.send_signal(sig)
    rest, err = agg.communicate(timeout=20)
    out = b"".join(forwarded) + rest
    assert agg.returncode == code, err
    assert b"Traceback" not in err
    windows = [r for r in records(out) if r.get("kind") == "window"]
    assert sum(w["total"] for w in windows) == 50   # nothing counted is lost on a pipe


def test_a_signal_while_the_reader_lags_leaves_no_cut_line(tmp_path) -> None:
    """The pipe is full when Ctrl-C comes: the write it interrupts still ends whole, so the
    lines after it are not glued onto half a line."""
    source = tmp_path / "in.ndjson"
    source.write_bytes(gen_lines(100_000, 6))
    with open(source, "rb") as src:
        proc = subprocess.Popen(evtool_cmd("validate", "-q"), stdin=src, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        handles_signals(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while pending(proc.stdout) < 60_000:            # nobody reads: the pipe fills
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = out.splitlines()
    assert 0 < len(lines) < 100_000
    assert all(orjson.loads(line)["event_id"] for line in lines)


def test_idle_flush_emits_open_windows_of_a_quiet_live_input() -> None:
    agg = subprocess.Popen(evtool_cmd("aggregate", "--idle-flush", "0.5", "-q"),
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    agg.stdin.write(gen_lines(10, 1))
    agg.stdin.flush()
    line = agg.stdout.readline()                     # arrives while stdin is still open
    assert orjson.loads(line)["kind"] == "window"
    agg.stdin.close()
    agg.wait(timeout=10)


@pytest.mark.parametrize("args", [
    ["gen", "--rate", "0"], ["gen", "--duplicates", "2"], ["aggregate", "--window", "-1"],
    ["validate", "--nope"], ["gen", "--start", "tomorrow"], ["validate", "--regions", ","],
    ["gen", "--count", "5", "--fast", "-o", "amqp", "--amqp-url", "http://127.0.0.1:5672/"],
    ["gen", "--count", "5", "--fast", "-o", "http://127.0.0.1:5672/?exchange=x"],
    ["validate", "-i", "ftp://host/events.ndjson"], ["validate", "--dead-letter", "https://x/"],
])
def test_bad_options_exit_2_with_one_clear_line(args) -> None:
    result = run(args, stdin=b"")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr and b"Error" in result.stderr


def test_unreadable_input_file_exits_1() -> None:
    result = run(["validate", "-i", "/nonexistent/x.ndjson"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        b"evtool validate: error: cannot open /nonexistent/x.ndjson: No such file or directory"]


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    names = cli.list_commands(click.Context(cli))
    assert names == ["gen", "validate", "aggregate", "audit", "replay", "watch", "learn"]
    for name in names:
        command = cli.get_command(click.Context(cli), name)
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0
        assert command.help and "Example" in result.output, name
        assert "EVTOOL_" in result.output


def test_options_can_come_from_the_environment() -> None:
    result = run(["gen", "-q"], env={"EVTOOL_GEN_COUNT": "3", "EVTOOL_GEN_FAST": "1",
                                     "EVTOOL_GEN_SEED": "4", "EVTOOL_GEN_START": START})
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3
    assert result.stdout == gen_lines(3, 4)


def test_quiet_silences_the_summary() -> None:
    assert run(["validate", "-q"], stdin=b"").stderr == b""
    assert b"evtool validate: 0 in" in run(["validate"], stdin=b"").stderr


def test_gen_paces_in_real_time_without_fast() -> None:
    started = time.monotonic()
    result = run(["gen", "--count", "30", "--rate", "30", "-q", "--seed", "1"])
    elapsed = time.monotonic() - started
    assert len(result.stdout.splitlines()) == 30
    assert 0.5 < elapsed < 5


def test_an_option_variable_applies_to_its_own_command_only(tmp) -> None:
    """EVTOOL_OUTPUT once sent every stage of a pipe to one file; now each command has its own."""
    out = tmp / "valid.ndjson"
    env = {"EVTOOL_VALIDATE_OUTPUT": str(out), "EVTOOL_GEN_COUNT": "50", "EVTOOL_GEN_FAST": "1",
           "EVTOOL_OUTPUT": str(tmp / "ignored.ndjson")}
    stdout, _ = pipeline(["gen", "-q"], ["validate", "-q"], env=env)
    assert stdout == b"" and len(out.read_bytes().splitlines()) == 50
    assert not (tmp / "ignored.ndjson").exists()
    shared = run(["gen", "-q", "--count", "2", "--fast"], env={"EVTOOL_PACK": "lab3"}).stdout
    assert shared.count(b"corr-") == 2                          # the pack is shared on purpose


def test_an_unscoped_option_variable_is_said_once_not_silently_ignored() -> None:
    result = run(["gen", "--count", "1", "--fast", "-q"], env={"EVTOOL_OUTPUT": "x.ndjson"})
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1
    assert result.stderr.decode().splitlines() == [
        "evtool gen: warning: EVTOOL_OUTPUT is set but not read: gen reads EVTOOL_GEN_OUTPUT"]


def test_files_as_arguments_are_read_one_after_another(tmp) -> None:
    first, second = tmp / "a.ndjson", tmp / "b.ndjson"
    first.write_bytes(gen_lines(30, 1).rstrip(b"\n"))          # no newline at its end
    second.write_bytes(gen_lines(20, 2))
    result = run(["validate", str(first), str(second), "-q"])
    assert result.returncode == 0
    assert result.stdout == first.read_bytes() + b"\n" + second.read_bytes()
    both = run(["validate", str(first), "-i", str(second)])
    assert both.returncode == 2 and b"not both" in both.stderr
    clobber = run(["validate", str(first), str(second), "-o", str(second)])
    assert clobber.returncode == 2 and second.read_bytes() == gen_lines(20, 2)
    joined = first.read_bytes() + b"\n" + second.read_bytes()
    for stage in (["aggregate", "-q"], ["audit", "--db", str(tmp / "x.db"), "-q"]):
        by_files = run([*stage, str(first), str(second)])
        assert by_files.returncode == 0 and by_files.stdout == run(stage, stdin=joined).stdout, stage
    watched = [orjson.loads(run(["watch", "--once", "--json", *args], stdin=joined).stdout)
               for args in ([str(first), str(second)], [])]
    assert watched[0]["source"] == f"{first}, {second}" and watched[0]["records"] == 50
    assert {**watched[0], "source": ""} == {**watched[1], "source": ""}


def test_every_stage_can_give_its_summary_as_one_json_object(tmp) -> None:
    made = gen_lines(300, 3, "--invalid", "0.1", "--duplicates", "0.05")
    gen = run(["gen", "--count", "300", "--seed", "3", "--fast", "--summary-json"])
    valid = run(["validate", "--summary-json"], stdin=made)
    counted = run(["aggregate", "--summary-json"], stdin=valid.stdout)
    stored = run(["audit", "--db", str(tmp / "s.db"), "--summary-json"], stdin=counted.stdout)
    watched = run(["watch", "--once", "--summary-json"], stdin=counted.stdout)
    verified = run(["replay", "--db", str(tmp / "s.db"), "--verify", "--summary-json"])
    said = {r.args[3]: orjson.loads(r.stderr) for r in (gen, valid, counted, stored, watched, verified)}
    assert said["gen"]["out"] == 300 and said["validate"]["in"] == 300
    assert said["validate"]["out"] + said["validate"]["dead_letters"] == 300
    assert sum(said["validate"]["dead_letters_by_reason"].values()) == said["validate"]["dead_letters"] > 0
    assert said["aggregate"]["in"] == len(valid.stdout.splitlines()) and said["aggregate"]["duplicates"] > 0
    assert said["audit"]["in"] == len(counted.stdout.splitlines()) == said["watch"]["records"]
    assert said["replay"]["checked"] == said["replay"]["metrics"] > 0 == said["replay"]["differences"]
