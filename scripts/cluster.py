"""Helpers for the broker scripts (chaos, load): a vhost of their own, evtool stages as
restartable processes, and what the audit database holds. Loopback only; everything started
here is stopped by `Cluster.close`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

    def __init__(self, vhost: str, aggregate_args: tuple[str, ...] = ()) -> None:
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
            "aggregate": Stage("aggregate", ["aggregate", "-i", "amqp", "-o", "amqp", "--idle-flush", "2",
                                             *aggregate_args], self.env, self.dir / "aggregate.log"),
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

    def wait_until(self, want: set[str], timeout: float) -> tuple[set[str], int]:
        deadline = time.monotonic() + timeout
        ids, total = self.stored()
        while time.monotonic() < deadline and not (ids == want and total == len(want)):
            time.sleep(1)
            ids, total = self.stored()
        return ids, total

    def close(self) -> None:
        for stage in self.stages.values():
            stage.stop()
        ctl("delete_vhost", self.vhost)


def expected_ids(*gen_args: str) -> set[str]:
    """The distinct valid event ids the same gen options produce, computed over plain pipes."""
    shell = (f"{' '.join(EVTOOL)} gen {' '.join(gen_args)} --fast -q | "
             f"{' '.join(EVTOOL)} validate -q")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, check=True).stdout
    import orjson

    return {r["event_id"] for r in map(orjson.loads, out.splitlines()) if "kind" not in r}
