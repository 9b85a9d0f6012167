"""The broker section of the benchmark: msg/s of evtool stages on RabbitMQ beside the original
system's way (prefetch 1, one ack and one synchronous confirm per message) and a bare publish
loop without confirms (the ceiling), all in a vhost of its own."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika

PY = sys.executable
EVTOOL = [PY, "-m", "evtool"]
VHOST = "evtool-bench"
URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"

ORIGINAL = r"""
import sys, pika
n = int(sys.argv[2])
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
ch.basic_qos(prefetch_count=1)
ch.confirm_delivery()
done = 0
for method, props, body in ch.consume("validator_queue"):
    ch.basic_publish("processing_exchange", "security.incident", body,
                     pika.BasicProperties(delivery_mode=2, content_type="application/json"))
    ch.basic_ack(method.delivery_tag)
    done += 1
    if done == n:
        break
conn.close()
"""

BARE = r"""
import sys, pika
lines = open(sys.argv[2], "rb").read().split(b"\n")[:-1]
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
ch.queue_declare("bare_queue", durable=True)
props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
for line in lines:
    ch.basic_publish("", "bare_queue", line, props)
conn.close()
"""


def broker_cpu() -> float:
    """CPU seconds used so far by the local RabbitMQ (beam.smp), 0 if it cannot be read."""
    total = 0.0
    for pid in subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True,
                              text=True).stdout.split():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Span:
    """Wall time and the broker's CPU time over the timed part of one case."""

    last_cpu = 0.0

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), broker_cpu()

    def end(self) -> float:
        Span.last_cpu = broker_cpu() - self.cpu
        return time.perf_counter() - self.wall


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=False, capture_output=True, timeout=120)


# An operator's lever, not evtool's: classic queues version 2, set by policy as RabbitMQ advises.
CQV2 = '{"queue-version": 2}'


def fresh_vhost(policy: str | None = None) -> None:
    ctl("delete_vhost", VHOST)
    ctl("add_vhost", VHOST)
    ctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    if policy:
        ctl("set_policy", "-p", VHOST, "bench", ".*", policy, "--apply-to", "queues")


def depth(queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if conn.is_open:
            conn.close()


def wait_depth(queue: str, want: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while depth(queue) < want:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {want} messages in {queue}")
        time.sleep(0.2)


STARTED: list[subprocess.Popen] = []


def evtool(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([*EVTOOL, *args, "-q"], env={**os.environ, "EVTOOL_AMQP_URL": URL},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    STARTED.append(proc)
    return proc


def clean_up(work: Path | None = None) -> None:
    """Whatever ended the run (done, an error, SIGTERM): no stage left running, no vhost holding
    messages, no scratch files."""
    for proc in STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    STARTED.clear()
    ctl("delete_vhost", VHOST)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def gen_args(n: int) -> list[str]:
    return ["gen", "--count", str(n), "--seed", "3", "--fast"]


def run_gen(n: int, policy: str | None = None) -> float:
    fresh_vhost(policy)
    span = Span()
    evtool(*gen_args(n), "-o", "amqp").wait()
    return span.end()


def run_validate(n: int, processes: int = 1, policy: str | None = None) -> float:
    run_gen(n, policy)
    span = Span()
    procs = [evtool("validate", "-i", "amqp", "-o", "amqp") for _ in range(processes)]
    wait_depth("aggregator_queue", n)
    elapsed = span.end()
    for proc in procs:
        stop(proc)
    return elapsed


def run_validate_one_queue(n: int) -> float:
    """validate into a single bound queue: the same broker work per output as the bare loop."""
    run_gen(n)
    span = Span()
    proc = evtool("validate", "-i", "amqp", "-o",
                  f"{URL}?exchange=processing_exchange&queue=aggregator_queue")
    wait_depth("aggregator_queue", n)
    elapsed = span.end()
    stop(proc)
    return elapsed


def run_original(n: int, script: Path) -> float:
    run_gen(n)
    declare_processing_exchange()
    span = Span()
    subprocess.run([PY, str(script), URL, str(n)], check=True)
    return span.end()


def declare_processing_exchange() -> None:
    """The topology evtool's validate declares, so the original way routes to the same two
    durable queues (aggregator and audit) and does the same broker work per message."""
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    ch = conn.channel()
    ch.exchange_declare("processing_exchange", "topic", durable=True)
    for queue in ("aggregator_queue", "audit_queue"):
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, "processing_exchange", "#")
    conn.close()


def run_bare(n: int, script: Path, lines: Path, policy: str | None = None) -> float:
    fresh_vhost(policy)
    span = Span()
    subprocess.run([PY, str(script), URL, str(lines)], check=True)
    return span.end()


def run_pipeline(n: int, distinct: int, db_dir: Path) -> float:
    fresh_vhost()
    db = db_dir / "broker-audit.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    stages = [evtool("validate", "-i", "amqp", "-o", "amqp"),
              evtool("aggregate", "-i", "amqp", "-o", "amqp", "--idle-flush", "1"),
              evtool("audit", "-i", "amqp", "--db", str(db))]
    time.sleep(1.5)
    span = Span()
    evtool(*gen_args(n), "-o", "amqp").wait()
    while True:
        try:
            with sqlite3.connect(db, timeout=10) as conn:
                events = conn.execute("SELECT count(*) FROM events_in").fetchone()[0]
                total = conn.execute("SELECT coalesce(sum(total), 0) FROM metrics_out").fetchone()[0]
        except sqlite3.OperationalError:
            events = total = 0
        if events == distinct and total == distinct:
            break
        time.sleep(0.2)
    elapsed = span.end()
    for proc in stages:
        stop(proc)
    return elapsed


def main(n: int, runs: int, original_n: int, db_dir: Path) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="evtool-bench-broker-"))
    try:
        return measure(n, runs, original_n, db_dir, work)
    finally:
        clean_up(work)


def measure(n: int, runs: int, original_n: int, db_dir: Path, work: Path) -> dict[str, float]:
    original, bare = work / "original.py", work / "bare.py"
    original.write_text(ORIGINAL)
    bare.write_text(BARE)
    lines = work / "lines.ndjson"
    with open(lines, "wb") as out:
        subprocess.run([*EVTOOL, *gen_args(n), "-q"], stdout=out, check=True)
    cases = {
        f"gen -o amqp ({n:,})": (lambda: run_gen(n), n),
        f"validate amqp->amqp ({n:,})": (lambda: run_validate(n), n),
        f"validate amqp->amqp, one output queue ({n:,})": (lambda: run_validate_one_queue(n), n),
        f"original validator: prefetch 1, sync confirm ({original_n:,})":
            (lambda: run_original(original_n, original), original_n),
        f"bare pika publish, no confirms ({n:,})": (lambda: run_bare(n, bare, lines), n),
        f"gen->validate->aggregate->audit on the broker ({n:,})":
            (lambda: run_pipeline(n, n, db_dir), n),
        f"validate amqp->amqp, queue-version 2 policy ({n:,})":
            (lambda: run_validate(n, policy=CQV2), n),
        f"bare pika publish, queue-version 2 policy ({n:,})":
            (lambda: run_bare(n, bare, lines, policy=CQV2), n),
        f"2 validate processes, amqp->amqp ({n:,})": (lambda: run_validate(n, 2), n),
        f"3 validate processes, amqp->amqp ({n:,})": (lambda: run_validate(n, 3), n),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpus: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for name, (case, _) in cases.items():
            times[name].append(case())
            cpus[name].append(Span.last_cpu)
    rates = {}
    print(f"  {'':58} {'time':>9} {'rate':>15} {'broker CPU/msg':>15}")
    for name, (_, count) in cases.items():
        median = statistics.median(times[name])
        rates[name] = count / median
        per_msg = statistics.median(cpus[name]) / count * 1e6
        print(f"  {name:58} {median:7.2f} s {count / median:>9,.0f} msg/s {per_msg:9.0f} us",
              flush=True)
    names = list(cases)
    validate, one_queue, original, bare = (rates[names[i]] for i in (1, 2, 3, 4))
    print(f"  validate vs original way (same topology): {validate / original:5.1f}x (target >= 8x)")
    cq_validate, cq_bare = rates[names[6]], rates[names[7]]
    print(f"  validate vs bare publish: {validate / bare:4.2f}x, with one output queue "
          f"{one_queue / bare:4.2f}x, both on queue-version 2 {cq_validate / cq_bare:4.2f}x "
          "(target >= 0.5x)")
    per_msg = {name: statistics.median(cpus[name]) / count for name, (_, count) in cases.items()}
    work_ratio = per_msg[names[1]] / per_msg[names[4]]
    print(f"  broker CPU per message, validate vs bare publish: {work_ratio:4.1f}x: the ceiling for "
          f"validate is about 1/{work_ratio:.1f} of the bare loop when the broker is the limit")
    return rates
