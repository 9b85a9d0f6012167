"""Progress of long work: a bar with rate and ETA on stderr under a terminal, nothing in a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.conftest import evtool_cmd, gen_lines, run


def under_terminal(args: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run with stderr on a pseudo-terminal (stdout and stdin stay what a script gives)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(evtool_cmd(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=follower, cwd=cwd, env={**os.environ, "TERM": "xterm", "COLUMNS": "100"})
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:             # the other side closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=120), seen


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "events.ndjson"
    path.write_bytes(gen_lines(60_000, 7))
    return path


def made_a_bar(stderr: bytes, stage: str) -> bool:
    return f"evtool {stage} ".encode() in stderr and b"100%" in stderr and b"eta" in stderr


@pytest.mark.parametrize("stage", ["validate", "aggregate", "audit"])
def test_a_stage_reading_a_file_shows_a_bar_with_size_rate_and_eta(stage: str, events: Path,
                                                                  tmp_path: Path) -> None:
    status, stderr = under_terminal([stage, "-i", str(events), "--db", "a.db"] if stage == "audit"
                                    else [stage, "-i", str(events)], tmp_path)
    assert status == 0 and made_a_bar(stderr, stage), stderr[-500:]
    assert b"MB" in stderr and b"MB/s" in stderr
    assert stderr.rstrip().endswith(b"records/s")      # the bar is gone, the summary stays


def test_gen_to_a_file_and_replay_show_a_bar_counting_records(tmp_path: Path) -> None:
    status, stderr = under_terminal(["gen", "--count", "50000", "--fast", "-o", "out.ndjson"], tmp_path)
    assert status == 0 and made_a_bar(stderr, "gen") and b"50000/50000" in stderr
    run(["audit", "--db", str(tmp_path / "r.db"), "-q", "-i", str(tmp_path / "out.ndjson"), "-o", os.devnull])
    status, stderr = under_terminal(["replay", "--db", "r.db"], tmp_path)
    assert status == 0 and made_a_bar(stderr, "replay") and b"50000/50000" in stderr


def test_no_bar_when_it_has_nowhere_sensible_to_go(events: Path, tmp_path: Path) -> None:
    """A pipe gets the summary line only; -q silences the bar too; gen into a pipe has no bar."""
    piped = run(["validate", "-i", str(events), "-o", os.devnull])
    assert piped.returncode == 0 and piped.stderr.count(b"\n") == 1 and b"\x1b" not in piped.stderr
    status, stderr = under_terminal(["validate", "-q", "-i", str(events)], tmp_path)
    assert status == 0 and stderr == b""
    status, stderr = under_terminal(["gen", "--count", "1000", "--fast"], tmp_path)   # stdout: not a file
    assert status == 0 and b"eta" not in stderr and stderr.startswith(b"evtool gen: 1000 out")


def test_replay_verify_shows_a_bar_over_the_events_it_reads(events: Path, tmp_path: Path) -> None:
    counted = run(["aggregate", "--forward", "-q", "-i", str(events)]).stdout
    run(["audit", "--db", str(tmp_path / "v.db"), "-q", "-o", os.devnull], stdin=counted)
    status, stderr = under_terminal(["replay", "--db", "v.db", "--verify"], tmp_path)
    assert status == 0 and made_a_bar(stderr, "replay --verify"), stderr[-500:]
    assert b"60000/60000" in stderr and stderr.rstrip().endswith(b"0 could not be checked")
