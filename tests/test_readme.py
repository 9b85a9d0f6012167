"""Every fenced `evtool` command of the README that needs no broker runs as written and ends."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what a command needs that a plain checkout does not give it: those commands are not run here
ELSEWHERE = {"amqp": "a broker", "--serve": "a server that runs until stopped",
             "postgresql://": "a PostgreSQL database", "/data/": "lab3's own audit database"}
TOOLS = ("jq", "sqlite3")
pytestmark = pytest.mark.slow          # real pipelines of several stages: the whole suite's job


def commands() -> list[str]:
    """Shell commands of the README's sh blocks that call evtool, continuations joined, in order."""
    found = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            text = line.strip()
            if re.search(r"(^|\|\s*|^\S+=\S+\s+)evtool\b", text):
                found.append(text)
    return found


def needs(command: str) -> str | None:
    for marker, why in ELSEWHERE.items():
        if marker in command:
            return why
    missing = [tool for tool in TOOLS if re.search(rf"\b{tool}\b", command) and not shutil.which(tool)]
    return f"{', '.join(missing)} (not installed)" if missing else None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the whole README, so a later example finds what an earlier one made."""
    path = tmp_path_factory.mktemp("readme")
    (path / "examples").symlink_to(ROOT / "examples")
    return path


README = commands()


def test_the_readme_has_commands_to_run() -> None:
    runnable = [c for c in README if needs(c) is None]
    assert len(runnable) >= 12 and any("replay" in c for c in runnable)


def test_the_readme_commands_run_in_order_and_end(workdir: Path) -> None:
    """One test, in the README's order: a later example reads what an earlier one made (split
    over xdist's workers, they ran apart and out of order)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("EVTOOL_") or k == "EVTOOL_TEST_BROKER"}
    for command in README:
        if needs(command) is not None:
            continue
        result = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
        assert result.returncode == 0, (command, result.stderr.decode()[-2000:])
        assert b"Traceback" not in result.stderr, command
        if promises_records(command):
            assert result.stdout.strip(), f"{command!r} printed nothing: {result.stderr.decode()[-500:]}"


def promises_records(command: str) -> bool:
    """Every example prints what it is for, except a verify (a clean one says nothing on stdout)
    and one that sends its output away."""
    return "--verify" not in command and "> /dev/null" not in command


def test_the_example_in_evtools_own_help_runs_quickly_and_prints_records(workdir: Path) -> None:
    shown = subprocess.run([sys.executable, "-m", "evtool", "--help"], capture_output=True, text=True,
                           check=True).stdout
    (example,) = [line.strip() for line in shown.splitlines() if line.strip().startswith("evtool gen")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {example}"], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
