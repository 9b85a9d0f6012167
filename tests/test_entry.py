"""The one place evtool exits: commands return their status, run in-process, no sys.exit below."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evtool.cli import run

PACKAGE = Path(__file__).resolve().parent.parent / "evtool"


def test_only_the_entry_point_exits() -> None:
    exits = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "exit" and getattr(node.func.value, "id", "") == "sys":
                exits.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert [place.split(":")[0] for place in exits] == ["cli/__init__.py"], exits


@pytest.mark.parametrize("args,status,said", [
    (["gen", "--count", "3", "--fast", "-q"], 0, ""),
    (["gen", "--rate", "0"], 2, "Invalid value for '--rate'"),
    (["validate", "-i", "/no/such/file"], 1, "evtool validate: error: cannot open /no/such/file"),
    (["replay", "--db", "/no/such/dir/x.db"], 1, "evtool replay: error:"),
    (["--version"], 0, ""),
    (["no-such-command"], 2, "No such command"),
])
def test_a_command_line_run_in_process_gives_its_status(args: list[str], status: int, said: str,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    assert run(args) == status
    out, err = capfd.readouterr()
    assert said in err
    if args[0] == "gen" and status == 0:
        assert len(out.splitlines()) == 3
