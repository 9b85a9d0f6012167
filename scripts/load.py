"""Sustained load over the broker: gen -> validate -> aggregate -> audit at a fixed rate for a
bounded time; reports throughput and end-to-end latency (event time to receipt by audit)."""

from __future__ import annotations

import argparse
import signal
import sqlite3
import statistics
import sys
import time
from datetime import datetime

from cluster import Cluster, broker_up, expected_ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=2000, help="events per second (default 2000)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load (default 30)")
    parser.add_argument("--background", action="store_true",
                        help="a busy neighbour for the benchmark: load until stopped, nothing checked")
    opts = parser.parse_args()
    if not broker_up():
        print("load: no RabbitMQ on 127.0.0.1:5672", file=sys.stderr)
        return 2
    count = int(opts.rate * opts.duration)
    gen_args = ["--count", str(count), "--rate", str(opts.rate), "--seed", "5"]
    if opts.background:
        return background(gen_args, opts.duration)
    want = expected_ids(*gen_args, "--start", "2026-11-26T00:00:00Z")
    cluster = Cluster("evtool-load")
    try:
        print(f"load: {count:,} events at {opts.rate}/s over the broker ...", flush=True)
        gen = cluster.gen(*gen_args)       # no --start: event time follows the wall clock
        gen.wait(timeout=opts.duration * 3 + 60)
        cluster.wait_until(want, timeout=60)
        with sqlite3.connect(cluster.db, timeout=10) as conn:
            rows = conn.execute("SELECT timestamp, received_at FROM events_in").fetchall()
    finally:
        cluster.close()
    event = [datetime.fromisoformat(t).timestamp() for t, _ in rows]
    stored = [datetime.fromisoformat(r.replace("Z", "+00:00")).timestamp() for _, r in rows]
    latency = sorted(s - e for e, s in zip(event, stored, strict=True))
    span = max(stored) - min(stored)

    def pct(p: float) -> float:
        return latency[min(len(latency) - 1, int(p / 100 * len(latency)))] * 1000

    print(f"load: stored {len(rows):,} of {len(want):,} distinct valid events; "
          f"throughput {len(rows) / span:,.0f} events/s over {span:.1f} s")
    print(f"load: end-to-end latency (event time -> received by audit) ms: p50 {pct(50):.0f}, "
          f"p90 {pct(90):.0f}, p99 {pct(99):.0f}, max {latency[-1] * 1000:.0f}, "
          f"mean {statistics.mean(latency) * 1000:.0f}")
    return 0 if len(rows) == len(want) else 1


def background(gen_args: list[str], duration: float) -> int:
    """The pipeline under load until `duration` ends or a signal stops it; its vhost removed."""
    cluster = Cluster("evtool-load")
    gen = None
    try:
        gen = cluster.gen(*gen_args)
        while not cluster.stored()[0] and gen.poll() is None:
            time.sleep(0.2)
        print("load: flowing", flush=True)
        gen.wait(timeout=duration + 60)
    finally:
        if gen is not None and gen.poll() is None:
            gen.terminate()
            gen.wait()
        cluster.close()
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)       # a SIGTERM closes the cluster as Ctrl-C does
    try:
        sys.exit(main())
    except KeyboardInterrupt:          # Ctrl-C: the cluster was closed on the way out
        sys.exit(130)
