"""scripts/bench.sh stopped by SIGTERM leaves nothing behind: no scratch files, no stage running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def scratch() -> set[Path]:
    where = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
    return set(where.glob("evtool-bench-*"))


def test_a_sigterm_mid_run_removes_the_scratch_files_and_stops_every_stage(tmp_path: Path) -> None:
    before = scratch()
    bench = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "bench.py"), "--events", "300000",
                              "--runs", "1", "--skip-broker", "--skip-memory",
                              "--json", str(tmp_path / "bench.json")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:                                        # until it measures: the floor loop runs
        work = [d for d in scratch() - before if (d / "floor.py").exists()]
        if work and running(str(work[0])):
            break
        assert time.monotonic() < deadline and bench.poll() is None
        time.sleep(0.05)
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=60) != 0
    assert scratch() - before == set()
    assert not running(str(work[0])), "a pipeline of the benchmark still runs"


def running(marker: str) -> list[str]:
    """Processes whose command line names `marker` (the benchmark's scratch directory)."""
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
