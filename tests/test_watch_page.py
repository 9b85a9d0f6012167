"""watch --serve: the live page in headless Chromium, /data, /metrics, HEAD, and who may ask."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.conftest import evtool_cmd
from tests.test_watch import flowed, free_port, get


def wait_for_windows(port: int, proc: subprocess.Popen, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status, body, _ = get(port, "/data")
            if status == 200 and orjson.loads(body)["windows"]:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("watch --serve never showed a window")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    """watch serving what a finished pipeline wrote to a file."""
    src = tmp_path / "flowed.ndjson"
    src.write_bytes(flowed())
    port = free_port()
    proc = subprocess.Popen(evtool_cmd("watch", "-q", "-i", str(src), "--serve", f"127.0.0.1:{port}"))
    try:
        wait_for_windows(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[int]:
    """watch serving a pipeline that is still running: gen | validate | aggregate | watch."""
    port = free_port()
    exe = " ".join(evtool_cmd())
    cmd = (f"{exe} gen --rate 2000 --invalid 0.03 --duplicates 0.02 --out-of-order 0.01 --max-delay 2 -q"
           f" | {exe} validate -q | {exe} aggregate --window 1 -q | {exe} watch -q --serve 127.0.0.1:{port}")
    proc = subprocess.Popen(cmd, shell=True, start_new_session=True)
    try:
        wait_for_windows(port, proc)
        yield port
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)


def test_data_keeps_counts_per_region_and_type_and_the_series_drawn(served: int) -> None:
    status, body, headers = get(served, "/data")
    data = orjson.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["totals"]["by_region_source"]["maule"]["security.incident"] > 0
    point = data["series"][-1]
    assert set(point) >= {"window_start", "by_source", "dead", "duplicates", "late", "alerts"}
    assert sum(sum(p["dead"].values()) for p in data["series"]) <= data["deadletters"]["total"]
    assert data["watermark"]["meaning"].startswith("newest window")


def test_page_script_and_style_come_from_this_server_only(served: int) -> None:
    status, page, headers = get(served, "/")
    assert status == 200 and b'<script src="/dashboard.js"' in page and b"http" not in page
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    status, script, headers = get(served, "/dashboard.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert b"innerHTML" not in script and b"fetch(\"/data\"" in script
    assert get(served, "/dashboard.css")[0] == 200 and get(served, "/nothing")[0] == 404


def test_head_answers_with_headers_and_no_body(served: int) -> None:
    for path in ("/", "/data", "/metrics"):
        status, body, headers = get(served, path, method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_metrics_speak_prometheus_text_or_openmetrics_as_asked(served: int) -> None:
    status, body, headers = get(served, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b'evtool_window_events_total{region="maule",source="security.incident"}' in body
    status, body, headers = get(served, "/metrics", headers={"Accept": "application/openmetrics-text"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_serve_refuses_a_foreign_host_header(served: int) -> None:
    assert get(served, "/data", host="evil.example")[0] == 403
    assert get(served, "/", host="evil.example:80")[0] == 403
    assert get(served, "/data", host=f"localhost:{served}")[0] == 200


def browser_or_skip() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        if os.environ.get("EVTOOL_TEST_BROWSER") == "required":
            pytest.fail("EVTOOL_TEST_BROWSER=required but chromium or playwright is missing")
        pytest.skip("no chromium or playwright (scripts/test.sh installs both when it can)")
    return found


def records_shown(page) -> int:
    return int(page.text_content('[data-k="records"]').replace(",", "") or 0)


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_live_page_draws_charts_and_updates_in_place(live: int, size: tuple[int, int],
                                                    tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = browser_or_skip()
    shots = Path(os.environ.get("EVTOOL_SCREENSHOTS", tmp_path))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        hosts: list[str] = []
        page.on("request", lambda request: hosts.append(urlsplit(request.url).hostname or ""))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{live}/")
        page.wait_for_selector("#rates line[data-series]", timeout=20_000)
        page.evaluate("window.__sameDocument = true")
        first = records_shown(page)
        deadline = time.monotonic() + 20
        while records_shown(page) <= first and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert page.evaluate("window.__sameDocument") is True          # no reload, no navigation
        assert records_shown(page) > first > 0
        regions = page.eval_on_selector_all('#regions rect[data-panel="all windows"]', "els => els.length")
        assert regions == 16
        widths = page.eval_on_selector_all('#regions rect[data-panel="all windows"]',
                                           "els => els.map(e => Number(e.getAttribute('width')))")
        assert max(widths) > 50
        assert page.eval_on_selector_all("#trouble rect[data-reason]", "els => els.length") > 0
        series = page.eval_on_selector_all("#rates line[data-series]",
                                           "els => els.map(e => e.dataset.series)")
        assert len(set(series)) == 3
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page is wider than the screen"
        page.screenshot(path=str(shots / f"watch-{size[0]}x{size[1]}.png"), full_page=True)
        browser.close()
    assert hosts and set(hosts) == {"127.0.0.1"}, hosts
    assert errors == []


def test_markup_in_the_data_is_shown_as_text_never_run(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_hostile_exposure import HOSTILE_ALERT, HOSTILE_WINDOW

    executable = browser_or_skip()
    src = tmp_path / "hostile.ndjson"
    src.write_bytes(HOSTILE_WINDOW + b"\n" + HOSTILE_ALERT + b"\n")
    port = free_port()
    proc = subprocess.Popen(evtool_cmd("watch", "-q", "-i", str(src), "--serve", f"127.0.0.1:{port}"))
    try:
        wait_for_windows(port, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page()
            dialogs: list[str] = []

            def dismissed(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismissed)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#alerts tbody tr", timeout=20_000)
            cells = page.eval_on_selector_all("#alerts tbody td", "els => els.map(e => e.textContent)")
            scripts = page.eval_on_selector_all("script", "els => els.length")
            labels = page.eval_on_selector_all("#regions text", "els => els.map(e => e.textContent)")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "<script>alert(1)</script>" in cells and "[/bad]" in labels
    assert scripts == 1 and dialogs == []


def open_page(port: int, size: tuple[int, int]):
    """A headless page on watch's server, and what it reported as errors."""
    from playwright.sync_api import sync_playwright

    executable = browser_or_skip()
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{port}/")
    return pw, browser, page, errors


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_a_finished_input_is_said_and_its_charts_do_not_mislead(served: int, size: tuple[int, int],
                                                               tmp_path: Path) -> None:
    pw, browser, page, errors = open_page(served, size)
    try:
        page.wait_for_selector("#alerts tbody tr", timeout=20_000)
        assert "input ended" in page.text_content("#state")
        # the first window, and the last once the input ended, may be partial: hollow, dashed
        assert page.eval_on_selector_all("#rates circle.partial", "els => els.length") >= 2
        assert page.eval_on_selector_all("#rates line.partial", "els => els.length") >= 2
        assert "the stream may cover only in part" in page.text_content("#rates-legend")
        # a reason's colour is its own, whatever other reasons there are
        fills = page.eval_on_selector_all('#trouble rect[data-reason="schema"]',
                                          "els => [...new Set(els.map(e => e.getAttribute('fill')))]")
        assert fills == ["#d64550"]
        # the legend's triangle points the way the markers do: down, at the window
        assert page.text_content(".hint").startswith("▼")
        tips = page.eval_on_selector_all("#rates path.alert-mark", "els => els.map(e => e.getAttribute('d'))")
        assert tips and all(float(d.split("L")[2].split(",")[1].rstrip(" Z")) >
                            float(d.split("L")[1].split(",")[1]) for d in tips)
        # two region charts, each labelled, each to its own scale
        panels = page.eval_on_selector_all("#regions text.panel", "els => els.map(e => e.textContent)")
        assert panels == ["latest window", "all windows"]
        # on a phone too, every column of the alerts is on screen, no sideways scroll
        spill = page.evaluate("(() => { const t = document.getElementById('alerts'); "
                              "return t.scrollWidth - t.clientWidth })()")
        assert spill <= 0
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        page.screenshot(path=str(Path(os.environ.get("EVTOOL_SCREENSHOTS", tmp_path))
                                 / f"watch-ended-{size[0]}.png"), full_page=True)
    finally:
        browser.close()
        pw.stop()
    assert errors == []


def test_before_the_first_window_the_page_says_it_waits_and_zero_is_not_trouble() -> None:
    port = free_port()
    proc = subprocess.Popen(evtool_cmd("watch", "-q", "--serve", f"127.0.0.1:{port}"), stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(port, "/data")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        pw, browser, page, errors = open_page(port, (1280, 800))
        try:
            page.wait_for_selector("#rates text.waiting", timeout=20_000)
            for chart in ("rates", "regions", "trouble"):
                assert page.text_content(f"#{chart}") == "waiting for the first window"
            ink = page.evaluate("getComputedStyle(document.body).color")
            for tile in (".tile.bad", ".tile.warn"):
                assert page.eval_on_selector(f"{tile} .value", "e => getComputedStyle(e).color") == ink
        finally:
            browser.close()
            pw.stop()
        assert errors == []
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_serving_after_the_input_ends_is_said_and_lingers_as_long_as_asked(tmp_path: Path) -> None:
    src = tmp_path / "flowed.ndjson"
    src.write_bytes(flowed())
    port = free_port()
    started = time.monotonic()
    args = ("watch", "-i", str(src), "--serve", f"127.0.0.1:{port}", "--linger", "2")
    done = subprocess.run(evtool_cmd(*args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and 2 <= time.monotonic() - started < 30
    assert "input ended; still serving" in done.stderr and "ends by itself in 2 s" in done.stderr


def test_ctrl_c_ends_serving_after_the_input_ended(tmp_path: Path) -> None:
    src = tmp_path / "flowed.ndjson"
    src.write_bytes(flowed())
    proc = subprocess.Popen(evtool_cmd("watch", "-i", str(src), "--serve", f"127.0.0.1:{free_port()}"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    said = ""
    while "still serving" not in said:                 # the line on stderr, not a clock
        line = proc.stderr.readline()
        assert line, said
        said += line
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 130
