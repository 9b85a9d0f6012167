"""watch --serve: the page, /data (JSON) and /metrics (Prometheus), for local clients only."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from evtool.tui.web import asset

LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]", "::1"}
# a connection that says nothing for this long is closed: each one held a thread until its
# client went away (300 idle sockets, 300 threads); the page asks a request per connection
IDLE_SECONDS = 10.0
Snapshot = Callable[[], dict[str, Any]]
# the page's own script and style only; nothing from elsewhere, no inline code, no framing
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " \
      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class SnapshotCollector(Collector):
    """Prometheus families read from the dashboard's snapshot at scrape time."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        snap = self.snapshot()
        records = CounterMetricFamily("evtool_watch_records", "Records read by watch")
        records.add_metric([], snap["records"])
        events = CounterMetricFamily("evtool_window_events", "Events counted in windows",
                                     labels=["region", "source"])
        for region, by in snap["totals"]["by_region_source"].items():
            for source, n in by.items():
                events.add_metric([region, source], n)
        dead = CounterMetricFamily("evtool_watch_deadletters", "Dead letters seen", labels=["reason"])
        for reason, n in snap["deadletters"]["by_reason"].items():
            dead.add_metric([reason], n)
        alerts = CounterMetricFamily("evtool_watch_alerts", "Alerts seen")
        alerts.add_metric([], snap["alerts"]["total"])
        dups = CounterMetricFamily("evtool_watch_duplicates", "Duplicates reported by aggregate")
        dups.add_metric([], snap["duplicates"])
        yield from (records, events, dead, alerts, dups)
        if snap["watermark_lag_s"] is not None:
            lag = GaugeMetricFamily("evtool_watermark_lag_seconds", "Now minus the newest window end")
            lag.add_metric([], snap["watermark_lag_s"])
            yield lag


def serve_metrics(port: int, snapshot: Snapshot) -> None:
    """--metrics-port for watch: the same families as /metrics of --serve."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot))
    start_http_server(port, addr="127.0.0.1", registry=registry)


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?\Z")
WILDCARDS = {"0.0.0.0", "::", ""}


def host_name(header: str) -> str | None:
    """The name in a Host header without its port ("[::1]:80" -> "[::1]"); None if malformed."""
    match = _HOST.match(header)
    return match.group(1).lower() if match else None


def allowed_hosts(host: str) -> set[str]:
    """Names a request may use: this machine's, and the address bound when it is a specific one
    (a wildcard bind is never a name: that is how DNS rebinding gets in)."""
    names = set(LOCAL_NAMES)
    if host in WILDCARDS:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        names |= {host.lower(), f"[{host.lower()}]"}
    return names


class QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request is its business, not a traceback on our stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Dropped connections are normal for a dashboard."""


def serve(host: str, port: int, snapshot: Snapshot) -> ThreadingHTTPServer:
    """Start serving on a daemon thread; the Host header must name this machine."""
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(snapshot))
    allowed = allowed_hosts(host)

    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_SECONDS

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def _answer(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            found = asset(path)
            if host_name(self.headers.get("Host") or "") not in allowed:
                self._send(403, "text/plain", b"refused: not a local Host\n", head)
            elif found is not None:
                self._send(200, found[0], found[1], head)
            elif path == "/data":
                self._send(200, "application/json", orjson.dumps(snapshot()), head)
            elif path == "/favicon.ico":
                self._send(204, "image/x-icon", b"", head)
            elif path == "/metrics":
                encoder, kind = choose_encoder(self.headers.get("Accept") or "")
                self._send(200, kind, encoder(registry), head)
            else:
                self._send(404, "text/plain", b"not found\n", head)

        def _send(self, code: int, kind: str, body: bytes, head: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Quiet: stderr is for the stage's own lines."""

    server = QuietServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="watch-http", daemon=True).start()
    return server
