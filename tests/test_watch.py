"""watch: the screen as a pure function, its summaries, the web page, and the live screen in tmux."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from evtool.core.dashboard import DashboardStats, Recent
from evtool.tui.render import render
from tests.conftest import evtool_cmd, gen_lines, records, run

ARGS = ("--invalid", "0.03", "--duplicates", "0.03", "--burst-probability", "0.004")


def flowed(count: int = 3000) -> bytes:
    validated = run(["validate", "-q"], stdin=gen_lines(count, 2, *ARGS)).stdout
    return run(["aggregate", "-q"], stdin=validated).stdout


def test_screen_is_a_pure_function_of_the_snapshot() -> None:
    stats = DashboardStats()
    stats.feed(flowed().splitlines())
    snap = stats.snapshot(now=1.0e10, source="a file")
    console = Console(width=120, record=True, color_system=None)
    console.print(render(snap))
    text = console.export_text()
    assert "events by region and source" in text and "reading         a file" in text
    maule = snap["totals"]["by_region_source"]["maule"]
    row = next(line for line in text.splitlines() if "│ maule " in line)
    assert str(sum(maule.values())) in row
    assert f"dead letters    {snap['deadletters']['total']}" in text
    assert "alerts (" in text


def test_once_json_totals_are_the_sum_of_the_windows_and_dead_letters_by_reason() -> None:
    data = flowed()
    result = run(["watch", "--once", "--json"], stdin=data)
    assert result.returncode == 0
    summary = orjson.loads(result.stdout)
    recs = records(data)
    windows = [r for r in recs if r.get("kind") == "window"]
    assert summary["windows"] == len(windows)
    assert summary["totals"]["total"] == sum(w["total"] for w in windows)
    for source in ("security.incident", "migration.case"):
        assert summary["totals"]["by_source"][source] == sum(w["by_source"].get(source, 0) for w in windows)
    reasons: dict[str, int] = {}
    for r in recs:
        if r.get("kind") == "deadletter":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    assert summary["deadletters"]["by_reason"] == reasons and reasons
    assert summary["duplicates"] == sum(w["duplicates"] for w in windows) > 0
    assert summary["alerts"]["total"] == sum(1 for r in recs if r.get("kind") == "alert")


def test_once_plain_has_no_colour_when_piped() -> None:
    result = run(["watch", "--once"], stdin=flowed(500))
    assert result.returncode == 0 and b"\x1b[" not in result.stdout
    assert b"events by region and source" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
    response = conn.getresponse()
    return response.status, response.read()


@pytest.fixture
def served(tmp_path):
    src = tmp_path / "flowed.ndjson"
    src.write_bytes(flowed())
    port = free_port()
    proc = subprocess.Popen(evtool_cmd("watch", "-i", str(src), "--serve", f"127.0.0.1:{port}"),
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if get(port, "/data")[0] == 200 and orjson.loads(get(port, "/data")[1])["windows"]:
                break
        except OSError:
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def test_serve_answers_data_metrics_and_page(served) -> None:
    status, body = get(served, "/data")
    data = orjson.loads(body)
    assert status == 200 and data["totals"]["total"] > 0 and "maule" in data["totals"]["by_region_source"]
    status, body = get(served, "/metrics")
    assert status == 200 and b'evtool_window_events_total{region="maule"' in body
    status, body = get(served, "/")
    assert status == 200 and b"<table id=\"regions\">" in body
    assert b"<script src" not in body and b"<link" not in body          # self-contained


def test_serve_refuses_a_foreign_host_header(served) -> None:
    assert get(served, "/data", host="evil.example")[0] == 403
    assert get(served, "/data", host=f"localhost:{served}")[0] == 200


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_page_in_headless_chromium_shows_the_region_table(served) -> None:
    browser = chromium()
    if browser is None:
        if os.environ.get("EVTOOL_TEST_BROWSER") == "required":
            pytest.fail("EVTOOL_TEST_BROWSER=required but no chromium is installed")
        pytest.skip("no chromium (scripts/test.sh installs Debian's when it can)")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", f"http://127.0.0.1:{served}/"],
            capture_output=True, timeout=90).stdout
    assert b'<table id="regions">' in dom and b"<td>maule</td>" in dom


def tmux_screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True, check=True).stdout


def counted(screen: str) -> int:
    line = next((x for x in screen.splitlines() if "events counted" in x), "")
    digits = "".join(ch for ch in line.split("events counted")[-1] if ch.isdigit())
    return int(digits or 0)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux")
def test_live_screen_in_tmux_grows(tmp_path: Path) -> None:
    session = f"evtool-{os.getpid()}"
    exe = " ".join(evtool_cmd())
    cmd = (f"{exe} gen --rate 2000 -q | {exe} validate -q | {exe} aggregate --window 1 -q "
           f"| COLUMNS=120 LINES=40 {exe} watch")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    subprocess.run(["tmux", "resize-window", "-t", session, "-x", "120", "-y", "40"], check=False)
    try:
        time.sleep(6)
        first = tmux_screen(session)
        time.sleep(4)
        second = tmux_screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert "events by region" in first and "│ metropolitana" in second and "evtool watch" in first
    assert 0 < counted(first) < counted(second)


def test_metrics_port_of_a_running_stage() -> None:
    port = free_port()
    agg = subprocess.Popen(evtool_cmd("aggregate", "--metrics-port", str(port), "-q"),
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    raw = gen_lines(2000, 3, "--duplicates", "0.05", "--invalid", "0.05")
    data = run(["validate", "-q"], stdin=raw).stdout
    agg.stdin.write(data)
    agg.stdin.flush()
    time.sleep(1.5)
    body = b""
    for _ in range(20):
        try:
            body = get(port, "/metrics")[1]
            if b'evtool_records_in_total{stage="aggregate"} 2000.0' in body:
                break
        except OSError:
            pass
        time.sleep(0.3)
    agg.stdin.close()
    agg.wait(timeout=10)
    assert b'evtool_records_in_total{stage="aggregate"} 2000.0' in body
    assert b'evtool_duplicates_total{stage="aggregate"}' in body
    assert b"evtool_processing_latency_seconds_bucket" in body
    assert b"evtool_broker_reconnects_total" in body


def test_partial_windows_from_partitions_merge_into_one() -> None:
    part = {"kind": "window", "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
            "duplicates": 0}
    a = {**part, "partition": 0, "total": 3, "by_region_source": {"maule": {"migration.case": 3}}}
    b = {**part, "partition": 1, "total": 2, "by_region_source": {"aysen": {"migration.case": 2}}}
    stats = DashboardStats()
    stats.feed([orjson.dumps(a), orjson.dumps(b)])
    snap = stats.snapshot(now=0)
    assert snap["latest_window"]["total"] == 5
    assert set(snap["latest_window"]["by_region_source"]) == {"maule", "aysen"}
    assert [p["rate"] for p in snap["events_per_s"]] == [1.0]


def test_a_window_delivered_again_is_counted_once() -> None:
    """A broker redelivery, or an aggregate restarted after emitting a window re-emitting a
    partial copy of it: the dashboard keeps the first, as audit's table does."""
    whole = {"kind": "window", "window_start": "2026-11-26T00:00:00Z",
             "window_end": "2026-11-26T00:00:05Z", "total": 3, "duplicates": 0,
             "by_region_source": {"maule": {"migration.case": 3}}}
    partial = {**whole, "total": 1, "by_region_source": {"maule": {"migration.case": 1}}}
    metric = {"kind": "metric", "metric_id": "m-1", "total": 3}
    stats = DashboardStats()
    stats.feed([orjson.dumps(r) for r in (whole, metric, partial, metric, whole)])
    snap = stats.snapshot(now=0)
    assert snap["totals"]["total"] == 3 and snap["windows"] == 1 and snap["metrics"] == 1
    assert snap["repeated"] == 3


def test_once_over_the_same_records_twice_gives_the_same_totals() -> None:
    data = flowed(1500)
    once = orjson.loads(run(["watch", "--once", "--json", "-q"], stdin=data).stdout)
    twice = orjson.loads(run(["watch", "--once", "--json", "-q"], stdin=data + data).stdout)
    assert twice["totals"] == once["totals"] and twice["windows"] == once["windows"] > 0
    assert twice["repeated"] == once["windows"] + once["metrics"] + once["alerts"]["total"]


def test_summary_line_quiet_and_output_file(tmp_path: Path) -> None:
    data = flowed(500)
    loud = run(["watch", "--once", "--json", "-o", str(tmp_path / "s.json")], stdin=data)
    assert loud.returncode == 0 and loud.stdout == b""
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    line = loud.stderr.decode().strip()
    assert line.startswith(f"evtool watch: {summary['records']} records ({summary['events']} events, "
                           f"{summary['windows']} windows")
    quiet = run(["watch", "--once", "-q"], stdin=data)
    assert quiet.stderr == b"" and b"events by region and source" in quiet.stdout
    refused = run(["watch", "-o", "amqp"], stdin=data)
    assert refused.returncode == 2 and b"not to the broker" in refused.stderr


def test_the_ids_watch_remembers_are_bounded() -> None:
    recent = Recent(size=100)
    assert not any(recent.seen(i) for i in range(1000))
    assert len(recent.new) + len(recent.old) <= 200
    assert all(recent.seen(i) for i in range(900, 1000))     # the latest are still known
    assert not recent.seen(0)                               # the oldest were let go
