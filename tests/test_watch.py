"""watch: the screen as a pure function, its summaries, the web page, and the live screen in tmux."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from evtool.cli import serve as serve_module
from evtool.core.dashboard import DashboardStats, Recent
from evtool.tui.render import render
from tests.conftest import evtool_cmd, gen_lines, records, run

ARGS = ("--invalid", "0.03", "--duplicates", "0.03", "--burst-probability", "0.004")


def flowed(count: int = 3000) -> bytes:
    validated = run(["validate", "-q"], stdin=gen_lines(count, 2, *ARGS)).stdout
    return run(["aggregate", "-q"], stdin=validated).stdout


def screen(snap: dict, width: int, height: int | None = None) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render(snap, width, height, "q quits"))
    return console.export_text()


def test_screen_is_a_pure_function_of_the_snapshot() -> None:
    stats = DashboardStats()
    stats.feed(flowed().splitlines())
    snap = stats.snapshot(now=1.0e10, source="a file")
    text = screen(snap, 120)
    assert text == screen(snap, 120) and "reading a file" in text
    maule = snap["totals"]["by_region_source"]["maule"]
    row = next(line for line in text.splitlines() if line.startswith("maule "))
    assert f"{sum(maule.values()):,}" in row
    assert f"dead letters {snap['deadletters']['total']:,}" in text
    assert f"alerts {snap['alerts']['total']}  newest first" in text


@pytest.mark.parametrize("width,height", [(80, 18), (120, 32), (200, 12)])
def test_the_screen_fits_and_what_matters_comes_first(width: int, height: int) -> None:
    stats = DashboardStats()
    stats.feed(flowed().splitlines())
    snap = stats.snapshot(now=1.0e10)
    assert snap["alerts"]["total"] >= 2
    lines = screen(snap, width, height).splitlines()
    assert len(lines) <= height and all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    for words in ("records", "events ", "rate ", "dead letters ", "duplicates ", "late ", "watermark ",
                  "alerts "):
        assert words in text
    totals = snap["totals"]["by_region"]
    shown = [line.split()[0] for line in lines if line.split() and line.split()[0] in totals]
    assert shown == sorted(totals, key=lambda r: (-totals[r], r))[:len(shown)] and shown
    assert (len(shown) == len(totals)) == (f"\n{len(totals)} regions, largest first" in text)


EIGHTHS = {c: (i + 1) / 8 for i, c in enumerate("▏▎▍▌▋▊▉█")}


@pytest.mark.parametrize("width,height", [(80, 24), (120, 40), (200, 40), (120, None)])
def test_region_bars_are_drawn_to_one_scale_at_every_width(width: int, height: int | None) -> None:
    stats = DashboardStats()
    stats.feed(flowed().splitlines())
    snap = stats.snapshot(now=1.0e10)
    totals = snap["totals"]["by_region"]
    bars = {}
    for line in screen(snap, width, height).splitlines():
        words = line.split()
        if words and words[0] in totals:
            bars[words[0]] = sum(EIGHTHS.get(c, 0) for c in line)
    assert len(bars) >= 8 and min(bars.values()) > 0, "every region shown has its bar"
    top = max(totals[r] for r in bars)
    longest = max(bars.values())
    for region, length in bars.items():           # in proportion, to an eighth of a cell
        assert abs(length - totals[region] / top * longest) <= 0.25, (region, length, totals[region])
    assert len(set(bars.values())) > 1


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
    assert b"16 regions, largest first" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, host: str | None = None, method: str = "GET",
        headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers={"Host": host or f"127.0.0.1:{port}", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.read(), dict(response.getheaders())


def test_metrics_port_of_a_running_stage() -> None:
    port = free_port()
    agg = subprocess.Popen(evtool_cmd("aggregate", "--metrics-port", str(port), "-q"),
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    raw = gen_lines(2000, 3, "--duplicates", "0.05", "--invalid", "0.05")
    data = run(["validate", "-q"], stdin=raw).stdout
    agg.stdin.write(data)
    agg.stdin.flush()
    body, deadline = b"", time.monotonic() + 60
    while time.monotonic() < deadline:      # until the port is up and the stage has read it all
        try:
            body = get(port, "/metrics")[1]
            if b'evtool_records_in_total{stage="aggregate"} 2000.0' in body:
                break
        except OSError:
            pass
        time.sleep(0.05)
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
    assert quiet.stderr == b"" and b"regions, largest first" in quiet.stdout
    refused = run(["watch", "-o", "amqp"], stdin=data)
    assert refused.returncode == 2 and b"not to the broker" in refused.stderr


def test_the_ids_watch_remembers_are_bounded() -> None:
    recent = Recent(size=100)
    assert not any(recent.seen(i) for i in range(1000))
    assert len(recent.new) + len(recent.old) <= 200
    assert all(recent.seen(i) for i in range(900, 1000))     # the latest are still known
    assert not recent.seen(0)                               # the oldest were let go


def test_source_columns_are_shortened_only_when_that_stays_unambiguous() -> None:
    window = {"kind": "window", "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
              "duplicates": 0, "by_region_source": {"maule": {"sec.a": 1, "sec.b": 2, "survey.x": 3}}}
    stats = DashboardStats()
    stats.feed([orjson.dumps(window)])
    lines = screen(stats.snapshot(now=0), 120).splitlines()
    header = next(line for line in lines if line.startswith("region"))
    assert header.split()[1:4] == ["sec.a", "sec.b", "survey"]


def test_a_connection_that_says_nothing_is_closed_and_the_page_still_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each idle connection to --serve held a thread for as long as its client kept it open."""
    monkeypatch.setattr(serve_module, "IDLE_SECONDS", 0.5)
    server = serve_module.serve("127.0.0.1", 0, lambda: {"records": 0})
    port = server.server_address[1]
    try:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        idle[0].sendall(b"GET /da")                           # a request line never finished
        for sock in idle:
            sock.settimeout(10)
            assert sock.recv(1024) == b""                    # closed by the server, no answer
            sock.close()
        assert get(port, "/data")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
