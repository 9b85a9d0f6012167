"""evtool's benchmark: events/s per stage and end to end, beside baselines from the same run.

Not a test: it prints numbers. Runs are interleaved and each figure is the median of --runs
runs, because this machine drifts by a third from one minute to the next.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bench_table

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EVTOOL = [PY, "-m", "evtool"]
START = "2026-11-26T00:00:00Z"
TUNED = {"MALLOC_TOP_PAD_": str(64 << 20)}

FLOOR = r"""
import sys, orjson
loads, dumps, out, buf = orjson.loads, orjson.dumps, sys.stdout.buffer, []
for line in sys.stdin.buffer:
    buf.append(dumps(loads(line)))
    if len(buf) >= 4096:
        out.write(b"\n".join(buf) + b"\n"); buf.clear()
if buf:
    out.write(b"\n".join(buf) + b"\n")
"""

# The original validator's way: per line, json.loads, then Draft7Validator with a format checker
# for the envelope and the payload of the event's source; valid events re-serialized.
ORIGINAL = r"""
import json, sys, jsonschema
sys.path.insert(0, sys.argv[1])
from evtool.schemas import load_pack
pack = load_pack()
env, payloads = pack.envelope, pack.payloads
for line in sys.stdin:
    ev = json.loads(line)
    fmt = jsonschema.FormatChecker()
    payload_schema = payloads[ev["source"]]
    if (jsonschema.Draft7Validator(env, format_checker=fmt).is_valid(ev)
            and jsonschema.Draft7Validator(payload_schema, format_checker=fmt).is_valid(ev["payload"])):
        sys.stdout.write(json.dumps(ev) + "\n")
"""


NAIVE_AUDIT = r"""
import sys, json
sys.path.insert(0, sys.argv[2])
from evtool.store.schema import MIGRATIONS
from evtool.store import sqlite as S
from evtool.store.engine import sqlite3
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for pragma in (f"page_size = {S.PAGE_SIZE}", "journal_mode = WAL", "synchronous = FULL",
               f"cache_size = -{S.CACHE_KIB}", f"mmap_size = {S.MMAP_BYTES}",
               f"wal_autocheckpoint = {S.CHECKPOINT_PAGES}"):
    conn.execute("PRAGMA " + pragma)
for statement in (s for migration in MIGRATIONS for s in migration):
    conn.execute(statement)
for line in sys.stdin:
    rec = json.loads(line)
    conn.execute("BEGIN")
    kind = rec.get("kind")
    if kind is None:
        conn.execute("INSERT OR IGNORE INTO events_in (event_id, raw, received_at, ts_us) "
                     "VALUES (?, ?, datetime('now'), 0)", (rec["event_id"], line))
    elif kind == "metric":
        conn.execute("INSERT INTO metrics_out (metric_id, date, region, window_start, window_end, "
                     "window_seconds, counts, total, created_at, raw) "
                     "VALUES (?,?,?,?,?,?,?,?,datetime('now'),?) ON CONFLICT DO NOTHING",
                     (rec["metric_id"], rec["date"], rec["region"], rec["window_start"],
                      rec["window_end"], rec["window_seconds"], json.dumps(rec["counts"]),
                      rec["total"], line))
        for eid in rec["input_event_ids"]:
            conn.execute("INSERT OR IGNORE INTO trace VALUES (?,?)", (rec["metric_id"], eid))
    conn.execute("COMMIT")
"""


def sh(cmd: str, stdin: Path | None = None, env: dict | None = None) -> float:
    """Seconds of one shell pipeline, output to /dev/null."""
    full = {**os.environ, **(env or {})}
    full.pop("PYTHONDONTWRITEBYTECODE", None)     # as users run it: modules compiled once
    started = time.perf_counter()
    with open(stdin or os.devnull, "rb") as src:
        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], stdin=src, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=full, start_new_session=True)
        status: int | None = None
        try:
            status = proc.wait()
        finally:                        # a signal to the bench ends the whole pipeline with it
            if status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if status:
        raise subprocess.CalledProcessError(status, cmd)
    return time.perf_counter() - started


def q(args: list[str]) -> str:
    return " ".join(args)


class Bench:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.results: dict[str, dict] = {}

    def measure(self, cases: dict[str, tuple[Callable[[], float], int]]) -> None:
        """Interleave the cases run by run; keep each one's median events/s."""
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(self.runs):
            for name, (case, _) in cases.items():
                times[name].append(case())
        for name, (_, events) in cases.items():
            median = statistics.median(times[name])
            self.results[name] = {"seconds": round(median, 3), "events_per_s": round(events / median),
                                  "runs": [round(t, 3) for t in times[name]]}
            print(f"  {name:38} {median:7.2f} s  {events / median:>11,.0f} events/s", flush=True)

    def ratio(self, name: str, base: str) -> float:
        return self.results[name]["events_per_s"] / self.results[base]["events_per_s"]


def peak_rss_mb(cmd: str) -> float:
    """Peak RSS of the last process in a shell pipeline (GNU time's %M of it)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        *head, last = cmd.split(" | ")
        timed = " | ".join([*head, f"/usr/bin/time -f %M -o {out.name} {last}"])
        sh(timed)
        return int(out.read().strip().splitlines()[-1]) / 1024


def pack_names() -> list[str]:
    """Every built-in pack and every example pack folder."""
    from evtool.schemas import builtin_packs

    examples = sorted(str(p) for p in (ROOT / "examples" / "packs").iterdir() if (p / "pack.json").is_file())
    return [*builtin_packs(), *examples]


def learn_time(work: Path, n: int, runs: int) -> float:
    """Median seconds of evtool learn over n events of the evtool pack (target: 100k in < 10 s)."""
    sample = work / "learn-sample.ndjson"
    if not sample.exists():
        sh(q([*EVTOOL, "gen", "--count", str(n), "--seed", "1", "--start", START, "--fast", "-q"])
           + f" > {sample}")
    learn = q([*EVTOOL, "learn", str(sample), "--out", str(work / "learned"), "--force", "--count",
               str(n), "-q"])
    seconds = statistics.median(sh(learn) for _ in range(runs))
    print(f"  learn, {n:,} events {seconds:17.2f} s   (target < 10 s for 100,000)", flush=True)
    return seconds


PIPE, TUNED_NAME = "gen | validate | aggregate", "floor (a), same malloc tuning as evtool"


@dataclass
class Setup:
    """What every pass measures, made once: the packs' events, the stream audit and replay read."""

    opts: argparse.Namespace
    work: Path
    names: list[str]
    files: dict[str, Path]
    events: Path
    floor: Path
    flowed: Path | None = None
    records_n: int = 0
    disk: Path | None = None
    naive_in: Path | None = None

    @property
    def audit_name(self) -> str:
        return f"audit ({self.records_n:,} records)"

    @property
    def naive_name(self) -> str:
        return f"naive audit, 1 tx/record ({self.opts.naive_records:,} records)"


def measure_pass(bench: Bench, label: str, setup: Setup) -> None:
    """One pass of everything the table shows (the quiet one also keeps the audit database)."""
    opts, n = setup.opts, setup.opts.events
    print(f"\n== {label}: each pack, {opts.pack_events:,} events, median of {bench.runs} runs", flush=True)
    bench.measure(bench_table.pack_cases(setup.names, setup.files, opts.pack_events, q(EVTOOL),
                                         f"{PY} {setup.floor}", sh, TUNED, START))
    if not opts.only_packs:
        gen = q([*EVTOOL, "gen", "--count", str(n), "--seed", "1", "--start", START, "--fast", "-q"])
        validate, aggregate = q([*EVTOOL, "validate", "-q"]), q([*EVTOOL, "aggregate", "-q"])
        print(f"\n== {label}: {n:,} events; audit and replay over what the pipe forwards", flush=True)
        bench.measure({
            TUNED_NAME: (lambda: sh(f"{PY} {setup.floor}", setup.events, TUNED), n),
            PIPE: (lambda: sh(f"{gen} | {validate} | {aggregate}"), n),
            **audit_cases(setup, n),
        })
    bench.results["learn"] = {"seconds": learn_time(setup.work, opts.learn_events, bench.runs)}


def audit_cases(setup: Setup, n: int) -> dict[str, tuple[Callable[[], float], int]]:
    """audit (on disk: fsync must mean something), a naive per-record commit, replay, watch."""
    assert setup.flowed is not None and setup.disk is not None and setup.naive_in is not None
    db, disk, flowed, naive_in = setup.disk / "audit.db", setup.disk, setup.flowed, setup.naive_in
    naive_script = setup.work / "naive.py"
    naive_script.write_text(NAIVE_AUDIT)

    def audit_run() -> float:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return sh(q([*EVTOOL, "audit", "--db", str(db), "-q"]), flowed)

    def naive_run() -> float:
        target = disk / "naive.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        return sh(f"{PY} {naive_script} {target} {ROOT}", naive_in)

    return {
        f"watch --once ({setup.records_n:,} records)": (
            lambda: sh(q([*EVTOOL, "watch", "--once", "--json", "-q"]), flowed), setup.records_n),
        setup.audit_name: (audit_run, setup.records_n),
        setup.naive_name: (naive_run, setup.opts.naive_records),
        "replay": (lambda: sh(q([*EVTOOL, "replay", "--db", str(db), "-q"])), n),
        "replay --verify": (lambda: sh(q([*EVTOOL, "replay", "--db", str(db), "--verify", "-q"])), n),
    }


def baselines(bench: Bench, setup: Setup) -> None:
    """The original validator (b), and jq and Miller doing a similar job (c)."""
    n, m = setup.opts.events, setup.opts.original_events
    small = setup.work / "small.ndjson"
    sh(f"head -n {m} {setup.events} > {small}")
    original = setup.work / "original.py"
    original.write_text(ORIGINAL)
    cases: dict[str, tuple[Callable[[], float], int]] = {
        "original (b): json+jsonschema": (lambda: sh(f"{PY} {original} {ROOT}", small), m),
        "validate, same events": (lambda: sh(q([*EVTOOL, "validate", "-q"]), small), m),
    }
    if shutil.which("jq"):
        cases["jq (c): select valid-looking + count"] = (lambda: sh(
            "jq -c 'select(.event_id != null and .region != null)' | "
            "jq -sc 'group_by(.region, .source) | map({key: (.[0].region + \"/\" + .[0].source),"
            " n: length})'", setup.events), n)
    if shutil.which("mlr"):
        cases["mlr (c): filter + count -g region,source"] = (lambda: sh(
            "mlr --ijsonl --ojsonl filter 'is_present($event_id)' then count -g region,source",
            setup.events), n)
    print(f"\n== baselines (b) and (c), median of {bench.runs} runs", flush=True)
    bench.measure(cases)
    print(f"  validate is {bench.ratio('validate, same events', 'original (b): json+jsonschema'):.1f}x "
          "the original validator (target >= 20x)")


def memory(bench: Bench, setup: Setup) -> None:
    """Peak RSS of aggregate on an endless stream (2M against 6M events) and at 1M distinct ids."""
    print("\n== memory (peak RSS of aggregate)", flush=True)
    mem = {}
    for count in (2_000_000, 6_000_000):
        cmd = (q([*EVTOOL, "gen", "--count", str(count), "--seed", "2", "--fast", "-q"])
               + " | " + q([*EVTOOL, "aggregate", "--dedupe-horizon", "60", "-q"]))
        mem[count] = peak_rss_mb(cmd)
        print(f"  --dedupe-horizon 60 after {count:>9,} events: {mem[count]:6.1f} MB", flush=True)
    growth = mem[6_000_000] / mem[2_000_000] - 1
    print(f"  growth 2M -> 6M: {growth:+.1%} (target within 5%)")
    distinct = peak_rss_mb(f"cat {setup.events} | " + q([*EVTOOL, "aggregate", "-q"]))
    print(f"  default horizon, {setup.opts.events:,} distinct events: {distinct:6.1f} MB (target <= 150 MB)")
    bench.results["memory"] = {"horizon60_2M_mb": mem[2_000_000], "horizon60_6M_mb": mem[6_000_000],
                               "growth": growth, "distinct_default_mb": distinct}


def prepare(opts: argparse.Namespace, work: Path) -> Setup:
    """Every pack's events, the evtool events of the pipe, and what the pipe forwards to audit."""
    names = pack_names()
    files = {}
    for pack in names:
        files[pack] = work / f"pack-{Path(pack).name}.ndjson"
        sh(q([*EVTOOL, "gen", "--pack", pack, "--count", str(opts.pack_events), "--seed", "1",
              "--start", START, "--fast", "-q"]) + f" > {files[pack]}")
    floor = work / "floor.py"
    floor.write_text(FLOOR)
    events = work / "events.ndjson"
    setup = Setup(opts, work, names, files, events, floor)
    if opts.only_packs:
        return setup
    print(f"generating {opts.events:,} events into {events} ...", flush=True)
    sh(q([*EVTOOL, "gen", "--count", str(opts.events), "--seed", "1", "--start", START, "--fast", "-q"])
       + f" > {events}")
    setup.flowed = work / "flowed.ndjson"
    sh(f"{q([*EVTOOL, 'validate', '-q'])} | {q([*EVTOOL, 'aggregate', '--forward', '-q'])} > {setup.flowed}",
       events)
    with open(setup.flowed, "rb") as f:
        setup.records_n = sum(1 for _ in f)
    setup.disk = Path(tempfile.mkdtemp(prefix="evtool-bench-db-", dir=ROOT / "bench-out"))
    setup.naive_in = work / "naive-in.ndjson"
    sh(f"head -n {opts.naive_records} {setup.flowed} > {setup.naive_in}")
    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pack-events", type=int, default=300_000)
    parser.add_argument("--only-packs", action="store_true", help="measure the packs (and learn) alone")
    parser.add_argument("--learn-events", type=int, default=100_000)
    parser.add_argument("--original-events", type=int, default=100_000)
    parser.add_argument("--naive-records", type=int, default=3000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-broker", action="store_true")
    parser.add_argument("--skip-busy", action="store_true", help="no second pass beside a busy neighbour")
    parser.add_argument("--busy-rate", type=int, default=2000, help="events/s of the busy neighbour")
    parser.add_argument("--broker-events", type=int, default=200_000)
    parser.add_argument("--original-broker-events", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=ROOT / "bench-out" / "bench.json")
    opts = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):     # so that `finally` cleans up
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = Path(tempfile.mkdtemp(prefix="evtool-bench-", dir=shm))
    (ROOT / "bench-out").mkdir(exist_ok=True)
    quiet, busy = Bench(opts.runs), Bench(opts.runs)
    try:
        setup = prepare(opts, work)
        measure_pass(quiet, "quiet", setup)
        if not opts.only_packs:
            baselines(quiet, setup)
            if not opts.skip_memory:
                memory(quiet, setup)
            if not opts.skip_broker:
                import bench_broker

                print(f"\n== broker (RabbitMQ), median of {opts.runs} runs")
                assert setup.disk is not None
                quiet.results["broker"] = bench_broker.main(opts.broker_events, opts.runs,
                                                            opts.original_broker_events, setup.disk)
        passes = [("quiet", quiet.results)]
        if not opts.skip_busy:
            print(f"\n== busy: scripts/load.py drives {opts.busy_rate:,} events/s through the broker")
            with bench_table.busy_neighbour(ROOT, opts.busy_rate):
                measure_pass(busy, "busy", setup)
            passes.append(("busy neighbour", busy.results))
        table = bench_table.rows(setup.names, PIPE, TUNED_NAME, setup.audit_name, setup.naive_name)
        bench_table.print_table(table, passes)
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps({"quiet": quiet.results, "busy": busy.results}, indent=2))
        print(f"\nresults: {opts.json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for leftover in (ROOT / "bench-out").glob("evtool-bench-db-*"):
            shutil.rmtree(leftover, ignore_errors=True)


if __name__ == "__main__":
    main()
