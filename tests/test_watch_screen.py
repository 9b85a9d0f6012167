"""watch's live screen in a real terminal (tmux): what fits at 80x24 and 120x40, `q`, and Ctrl-C
leaving one final frame above the other stages' summary lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import evtool_cmd
from tests.test_watch import free_port

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux")

TITLE = re.compile(r"^evtool watch  ([\d,]+) records \(([\d,]+) windows")


class Pane:
    """One terminal on a tmux server of its own: a shared server exits when its last session is
    killed, racing the next test's new-session ("server exited unexpectedly")."""

    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.name = "watch"

    def tmux(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=check).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def text(self, history: bool = False) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, *(["-S", "-200"] if history else []))

    def until(self, done, within: float) -> str:
        deadline = time.monotonic() + within
        while True:
            screen = self.text(history=True)
            if done(screen) or time.monotonic() > deadline:
                return screen
            time.sleep(0.3)


@pytest.fixture
def pane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pane]:
    width, height = request.param
    pane = Pane(f"evtool-test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    pane.tmux("-f", os.devnull, "new-session", "-d", "-s", pane.name, "-x", str(width), "-y", str(height),
              "env", "-i", f"PATH={os.environ['PATH']}", "TERM=xterm-256color", "HOME=" + str(tmp_path),
              "bash", "--norc", "--noprofile")
    try:
        yield pane
    finally:
        pane.tmux("kill-server", check=False)


def start(pane: Pane) -> str:
    exe = " ".join(evtool_cmd())
    pane.keys(f"cd {os.getcwd()}; PS1='$ '; {exe} gen --rate 3000 --invalid 0.03 --duplicates 0.02 "
              f"--burst-probability 0.003 --burst-size 400 | {exe} validate | {exe} aggregate --window 1 "
              f"| {exe} watch; echo exit=$?", "Enter")
    return pane.until(lambda s: any((m := TITLE.match(x)) and int(m[2]) >= 13 for x in s.splitlines()), 60)


def ended(screen: str) -> bool:
    return re.search(r"^exit=\d+$", screen, re.M) is not None


def frames(screen: str) -> list[re.Match[str]]:
    return [m for line in screen.splitlines() if (m := TITLE.match(line))]


def what_matters_is_visible(screen: str, width: int, height: int) -> None:
    visible = screen.splitlines()[-height:]
    assert len(frames("\n".join(visible))) == 1, screen
    text = "\n".join(visible)
    for words in ("records", "rate ", "/s", "dead letters ", "duplicates ", "late ", "watermark ",
                  "alerts "):
        assert words in text, (words, screen)
    assert re.search(r"\d+ (of 16 )?regions, largest first", text), screen
    assert all(len(line) <= width for line in visible)
    shown = [line for line in visible if re.match(r"^[a-z-]+ +[\d,]+ +[\d,]+ +[\d,]+ +[\d,]+ +[\d,]+", line)]
    assert len(shown) >= 8, screen
    if height >= 40:
        assert len(shown) == 16, screen


@pytest.mark.parametrize("pane", [(80, 24), (120, 40)], indirect=True, ids=["80x24", "120x40"])
def test_q_quits_with_exit_zero_and_the_screen_fits(pane: Pane) -> None:
    live = start(pane)
    size = pane.tmux("display", "-p", "-t", pane.name, "#{pane_width} #{pane_height}").split()
    what_matters_is_visible(live, int(size[0]), int(size[1]))
    assert "q quits" in live
    pane.keys("q")
    after = pane.until(ended, 30)
    assert re.search(r"^exit=0$", after, re.M), after
    assert len(frames(after)) == 1, after


@pytest.mark.parametrize("pane", [(80, 24), (120, 40)], indirect=True, ids=["80x24", "120x40"])
def test_ctrl_c_leaves_one_current_frame_above_every_summary_line(pane: Pane) -> None:
    start(pane)
    pane.keys("C-c")
    after = pane.until(ended, 30)
    assert re.search(r"^exit=130$", after, re.M), after
    final = frames(after)
    assert len(final) == 1, after                           # no stale frame left behind
    lines = after.splitlines()
    title_at = next(i for i, line in enumerate(lines) if TITLE.match(line))
    for stage in ("gen", "validate", "aggregate", "watch"):
        at = [i for i, line in enumerate(lines) if line.startswith(f"evtool {stage}: ")]
        assert len(at) == 1 and at[0] > title_at, (stage, after)
    summary = next(line for line in lines if line.startswith("evtool watch: "))
    assert summary.startswith(f"evtool watch: {final[0][1].replace(',', '')} records"), after


@pytest.mark.parametrize("pane", [(80, 24), (120, 40)], indirect=True, ids=["80x24", "120x40"])
def test_a_finite_input_leaves_its_whole_last_frame_on_screen_above_the_prompt(pane: Pane) -> None:
    exe = " ".join(evtool_cmd())
    pane.keys(f"cd {os.getcwd()}; PS1='$ '; clear; {exe} gen --count 6000 --rate 3000 | {exe} validate "
              f"| {exe} aggregate --window 1 | {exe} watch; echo exit=$?", "Enter")
    pane.until(ended, 60)
    visible = pane.text()                            # the screen as it is now, no history
    assert re.search(r"^exit=0$", visible, re.M), visible
    assert len(frames(visible)) == 1, visible        # its title row too, not scrolled away
    for words in ("events ", "dead letters ", "watermark ", "alerts ", "input ended"):
        assert words in visible, (words, visible)


@pytest.mark.parametrize("pane", [(80, 24)], indirect=True, ids=["80x24"])
def test_q_ends_a_page_served_after_its_input_ended(pane: Pane, tmp_path: Path) -> None:
    exe = " ".join(evtool_cmd())
    src = tmp_path / "events.ndjson"
    src.write_bytes(subprocess.run(evtool_cmd("gen", "--count", "500", "--fast", "-q"), capture_output=True,
                                   check=True).stdout)
    serve = f"--serve 127.0.0.1:{free_port()}"
    pane.keys(f"cd {os.getcwd()}; PS1='$ '; {exe} watch -i {src} {serve}; echo exit=$?", "Enter")
    pane.until(lambda s: "still serving" in s, 30)
    pane.keys("q")
    after = pane.until(ended, 15)
    assert re.search(r"^exit=0$", after, re.M), after
