"""Helpers for the broker scripts (chaos, load): a vhost of their own, evtool stages as
restartable processes, and what the audit database holds. Loopback only; everything started
here is stopped by `Cluster.close`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

Metric = tuple[int, dict[str, Any], tuple[str, ...]]          # total, counts, traced event ids

EVTOOL = [sys.executable, "-m", "evtool"]


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True, timeout=120)


def broker_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


class Stage:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([*EVTOOL, *self.args], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Cluster:
    """validate, aggregate and audit on a fresh vhost, with the database in a temporary folder."""

    def __init__(self, vhost: str, aggregate_args: tuple[str, ...] = (), idle_flush: float = 2) -> None:
        """`idle_flush`: aggregate's --idle-flush; a drill with faults wants one longer than any
        outage, or a quiet spell closes windows early and what follows them is late."""
        self.vhost = vhost
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{vhost}-"))
        self.db = self.dir / "audit.db"
        ctl("delete_vhost", vhost)
        ctl("add_vhost", vhost)
        ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        self.env = {**os.environ, "EVTOOL_AMQP_URL": self.url}
        self.stages = {
            "validate": Stage("validate", ["validate", "-i", "amqp", "-o", "amqp"], self.env,
                              self.dir / "validate.log"),
            "aggregate": Stage("aggregate", ["aggregate", "-i", "amqp", "-o", "amqp", "--idle-flush",
                                             str(idle_flush), *aggregate_args],
                               self.env, self.dir / "aggregate.log"),
            "audit": Stage("audit", ["audit", "-i", "amqp", "--db", str(self.db), "-o", os.devnull],
                           self.env, self.dir / "audit.log"),
        }
        time.sleep(1.5)

    def gen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*EVTOOL, "gen", *args, "-o", "amqp", "-q"], env=self.env)

    def stored(self) -> tuple[set[str], int]:
        """(event ids in events_in, sum of metric totals)."""
        try:
            with sqlite3.connect(self.db, timeout=10) as conn:
                ids = {r[0] for r in conn.execute("SELECT event_id FROM events_in")}
                total = conn.execute("SELECT coalesce(sum(total), 0) FROM metrics_out").fetchone()[0]
                return ids, int(total)
        except sqlite3.OperationalError:
            return set(), 0

    def metrics(self) -> dict[str, Metric]:
        """The stored metrics with their traces."""
        with sqlite3.connect(self.db, timeout=10) as conn:
            trace: dict[str, list[str]] = {}
            for metric_id, event_id in conn.execute("SELECT metric_id, event_id FROM trace"):
                trace.setdefault(metric_id, []).append(event_id)
            return {m: (t, json.loads(c), tuple(sorted(trace.get(m, []))))
                    for m, t, c in conn.execute("SELECT metric_id, total, counts FROM metrics_out")}

    def wait_until(self, want: set[str], timeout: float, total_want: int | None = None
                   ) -> tuple[set[str], int]:
        """Until the stored events are `want` and the metric totals add up to `total_want`
        (default: one count per event)."""
        total_want = len(want) if total_want is None else total_want
        deadline = time.monotonic() + timeout
        ids, total = self.stored()
        while time.monotonic() < deadline and not (ids == want and total == total_want):
            time.sleep(1)
            ids, total = self.stored()
        return ids, total

    def close(self) -> None:
        for stage in self.stages.values():
            stage.stop()
        ctl("delete_vhost", self.vhost)


def expected_metrics(gen_args: tuple[str, ...], aggregate_args: tuple[str, ...]) -> dict[str, Metric]:
    """The metrics (total, counts, traced ids) the same input gives over plain pipes."""
    shell = (f"{' '.join(EVTOOL)} gen {' '.join(gen_args)} --fast -q | {' '.join(EVTOOL)} validate -q "
             f"| {' '.join(EVTOOL)} aggregate -q {' '.join(aggregate_args)}")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, check=True).stdout
    return {r["metric_id"]: (r["total"], r["counts"], tuple(sorted(r["input_event_ids"])))
            for r in map(json.loads, out.splitlines()) if r.get("kind") == "metric"}


def expected_ids(*gen_args: str) -> set[str]:
    """The distinct valid event ids the same gen options produce, computed over plain pipes."""
    shell = (f"{' '.join(EVTOOL)} gen {' '.join(gen_args)} --fast -q | "
             f"{' '.join(EVTOOL)} validate -q")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, check=True).stdout
    import orjson

    return {r["event_id"] for r in map(orjson.loads, out.splitlines()) if "kind" not in r}
