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
from pathlib import Path

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
import sqlite3, sys, json
sys.path.insert(0, sys.argv[2])
from evtool.store.schema import MIGRATIONS
from evtool.store import sqlite as S
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


def table(bench: Bench, records_n: int, naive_name: str, audit_name: str) -> None:
    """The summary the speed issue asks for: each stage beside the tuned floor and its target."""
    res, tuned = bench.results, "floor (a), same malloc tuning as evtool"
    pipe = "gen | validate | aggregate"
    rows = [("floor, tuned", tuned, ""), ("floor, untuned", "floor (a): orjson loads+dumps loop", ""),
            ("validate", "validate", ">= 0.4"), ("aggregate", "aggregate", ">= 0.4"),
            ("gen --fast", "gen --fast", ">= 0.4"), (pipe.replace("|", "\\|"), pipe, ">= 0.15"),
            (f"audit ({records_n:,} records)", audit_name, ">= 0.2, >= 30x naive"),
            ("replay", "replay", "keep"), ("replay --verify", "replay --verify", "within 3x of replay")]
    print("\n| stage | events/s | x tuned floor | target |\n|---|---|---|---|")
    for label, name, target in rows:
        ratio = res[name]["events_per_s"] / res[tuned]["events_per_s"]
        print(f"| {label} | {res[name]['events_per_s']:,} | {ratio:.2f} | {target} |")
    print(f"| naive audit | {res[naive_name]['events_per_s']:,} | "
          f"audit is {res[audit_name]['events_per_s'] / res[naive_name]['events_per_s']:.1f}x | |")


def pack_names() -> list[str]:
    """Every built-in pack and every example pack folder."""
    from evtool.schemas import builtin_packs

    examples = sorted(str(p) for p in (ROOT / "examples" / "packs").iterdir() if (p / "pack.json").is_file())
    return [*builtin_packs(), *examples]


def packs(bench: Bench, work: Path, n: int, runs: int) -> None:
    """gen and validate for each pack beside the evtool pack's, from the same interleaved runs:
    every pack should run at (nearly) the same speed, since its fast paths come from its data."""
    cases: dict[str, tuple[Callable[[], float], int]] = {}
    names = pack_names()
    for pack in names:
        made = work / f"pack-{Path(pack).name}.ndjson"
        gen = q([*EVTOOL, "gen", "--pack", pack, "--count", str(n), "--seed", "1", "--start", START,
                 "--fast", "-q"])
        sh(f"{gen} > {made}")
        validate = q([*EVTOOL, "validate", "--pack", pack, "-q"])
        cases[f"gen --pack {Path(pack).name}"] = (lambda gen=gen: sh(gen), n)
        cases[f"validate --pack {Path(pack).name}"] = (lambda v=validate, m=made: sh(v, m), n)
    print(f"\n== packs: {n:,} events each, median of {runs} runs")
    bench.measure(cases)
    print("\n== packs against the evtool pack (target >= 0.8x)")
    for stage in ("gen", "validate"):
        for pack in names:
            name = Path(pack).name
            ratio = bench.ratio(f"{stage} --pack {name}", f"{stage} --pack evtool")
            flag = "" if ratio >= 0.8 else "   below target"
            print(f"  {stage:9} {name:12} {ratio:5.2f}x{flag}")


def learn_time(work: Path, n: int, runs: int) -> None:
    """evtool learn over n events of the evtool pack (target: 100k in under 10 s)."""
    sample = work / "learn-sample.ndjson"
    sh(q([*EVTOOL, "gen", "--count", str(n), "--seed", "1", "--start", START, "--fast", "-q"])
       + f" > {sample}")
    learn = q([*EVTOOL, "learn", str(sample), "--out", str(work / "learned"), "--force", "--count",
               str(n), "-q"])
    times = [sh(learn) for _ in range(runs)]
    print(f"\n== learn: {n:,} events, median of {runs} runs")
    print(f"  learn {statistics.median(times):7.2f} s   (target < 10 s for 100,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pack-events", type=int, default=300_000)
    parser.add_argument("--only-packs", action="store_true", help="measure the packs (and learn) and stop")
    parser.add_argument("--learn-events", type=int, default=100_000)
    parser.add_argument("--original-events", type=int, default=100_000)
    parser.add_argument("--naive-records", type=int, default=3000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-broker", action="store_true")
    parser.add_argument("--broker-events", type=int, default=200_000)
    parser.add_argument("--original-broker-events", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=ROOT / "bench-out" / "bench.json")
    opts = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):     # so that `finally` cleans up
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    n, runs = opts.events, opts.runs
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = Path(tempfile.mkdtemp(prefix="evtool-bench-", dir=shm))
    (ROOT / "bench-out").mkdir(exist_ok=True)
    bench = Bench(runs)
    try:
        if opts.only_packs:
            packs(bench, work, opts.pack_events, runs)
            learn_time(work, opts.learn_events, runs)
            return
        events = work / "events.ndjson"
        print(f"generating {n:,} events into {events} ...", flush=True)
        sh(q([*EVTOOL, "gen", "--count", str(n), "--seed", "1", "--start", START, "--fast", "-q"])
           + f" > {events}")
        floor = work / "floor.py"
        floor.write_text(FLOOR)
        gen = q([*EVTOOL, "gen", "--count", str(n), "--seed", "1", "--start", START, "--fast", "-q"])
        validate, aggregate = q([*EVTOOL, "validate", "-q"]), q([*EVTOOL, "aggregate", "-q"])

        print(f"\n== foundation: {n:,} events, median of {runs} runs")
        bench.measure({
            "floor (a): orjson loads+dumps loop": (lambda: sh(f"{PY} {floor}", events), n),
            "floor (a), same malloc tuning as evtool": (lambda: sh(f"{PY} {floor}", events, TUNED), n),
            "gen --fast": (lambda: sh(gen), n),
            "validate": (lambda: sh(validate, events), n),
            "aggregate": (lambda: sh(aggregate, events), n),
            "gen | validate | aggregate": (lambda: sh(f"{gen} | {validate} | {aggregate}"), n),
        })
        small = work / "small.ndjson"
        m = opts.original_events
        sh(f"head -n {m} {events} > {small}")
        original = work / "original.py"
        original.write_text(ORIGINAL)
        baselines: dict[str, tuple[Callable[[], float], int]] = {
            f"original (b): json+jsonschema, {m:,} ev": (lambda: sh(f"{PY} {original} {ROOT}", small), m),
        }
        if shutil.which("jq"):
            baselines["jq (c): select valid-looking + count"] = (lambda: sh(
                "jq -c 'select(.event_id != null and .region != null)' | "
                "jq -sc 'group_by(.region, .source) | map({key: (.[0].region + \"/\" + .[0].source),"
                " n: length})'", events), n)
        if shutil.which("mlr"):
            baselines["mlr (c): filter + count -g region,source"] = (lambda: sh(
                "mlr --ijsonl --ojsonl filter 'is_present($event_id)' then count -g region,source",
                events), n)
        print(f"\n== baselines (b) and (c), median of {runs} runs")
        bench.measure(baselines)

        r = bench.ratio
        a, at = "floor (a): orjson loads+dumps loop", "floor (a), same malloc tuning as evtool"
        b = f"original (b): json+jsonschema, {m:,} ev"
        print("\n== ratios (throughput): against floor (a) as users run it | against the tuned floor")
        for stage, target in (("validate", 0.4), ("aggregate", 0.4), ("gen --fast", 0.4),
                              ("gen | validate | aggregate", 0.15)):
            print(f"  {stage:28} {r(stage, a):5.2f}x | {r(stage, at):5.2f}x   (target >= {target}x tuned)")
        print(f"  {'validate vs original (b)':28} {r('validate', b):5.1f}x   (target >= 20x)")
        packs(bench, work, opts.pack_events, runs)
        learn_time(work, opts.learn_events, runs)

        print(f"\n== audit and replay over gen | validate | aggregate --forward, median of {runs} runs")
        flowed = work / "flowed.ndjson"
        sh(f"{validate} | {q([*EVTOOL, 'aggregate', '--forward', '-q'])} > {flowed}", events)
        with open(flowed, "rb") as f:
            records_n = sum(1 for _ in f)
        disk = Path(tempfile.mkdtemp(prefix="evtool-bench-db-", dir=ROOT / "bench-out"))
        db = disk / "audit.db"     # on disk, not tmpfs: fsync must mean something

        def audit_run() -> float:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            return sh(q([*EVTOOL, "audit", "--db", str(db), "-q"]), flowed)

        naive_n = opts.naive_records
        naive_in = work / "naive-in.ndjson"
        sh(f"head -n {naive_n} {flowed} > {naive_in}")
        naive_script = work / "naive.py"
        naive_script.write_text(NAIVE_AUDIT)

        def naive_run() -> float:
            target = disk / "naive.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            return sh(f"{PY} {naive_script} {target} {ROOT}", naive_in)

        bench.measure({
            f"watch --once ({records_n:,} records)": (
                lambda: sh(q([*EVTOOL, "watch", "--once", "--json", "-q"]), flowed), records_n),
            f"audit ({records_n:,} records)": (audit_run, records_n),
            f"naive audit, 1 tx/record ({naive_n:,} records)": (naive_run, naive_n),
            "replay": (lambda: sh(q([*EVTOOL, "replay", "--db", str(db), "-q"])), n),
            "replay --verify": (lambda: sh(q([*EVTOOL, "replay", "--db", str(db), "--verify", "-q"])), n),
        })
        audit_name = f"audit ({records_n:,} records)"
        naive_name = f"naive audit, 1 tx/record ({naive_n:,} records)"
        print(f"  audit vs naive:      {r(audit_name, naive_name):7.1f}x   (target >= 30x)")
        print(f"  audit vs floor (a):  {r(audit_name, a):5.2f}x | {r(audit_name, at):5.2f}x"
              "   (target >= 0.2x tuned)")
        print(f"  replay vs floor (a): {r('replay', a):5.2f}x | {r('replay', at):5.2f}x   (keep)")
        print(f"  replay --verify takes {1 / r('replay --verify', 'replay'):4.1f}x the time of replay"
              "   (target <= 3x)")
        watch_name = f"watch --once ({records_n:,} records)"
        print(f"  watch vs floor (a):  {r(watch_name, a):5.2f}x | {r(watch_name, at):5.2f}x")
        table(bench, records_n, naive_name, audit_name)

        if not opts.skip_broker:
            sys.path.insert(0, str(ROOT / "scripts"))
            import bench_broker

            print(f"\n== broker (RabbitMQ), median of {runs} runs")
            bench.results["broker"] = bench_broker.main(opts.broker_events, runs,
                                                        opts.original_broker_events, disk)

        if not opts.skip_memory:
            print("\n== memory (peak RSS of aggregate)")
            mem = {}
            for count in (2_000_000, 6_000_000):
                cmd = (q([*EVTOOL, "gen", "--count", str(count), "--seed", "2", "--fast", "-q"])
                       + " | " + q([*EVTOOL, "aggregate", "--dedupe-horizon", "60", "-q"]))
                mem[count] = peak_rss_mb(cmd)
                print(f"  --dedupe-horizon 60 after {count:>9,} events: {mem[count]:6.1f} MB", flush=True)
            growth = mem[6_000_000] / mem[2_000_000] - 1
            print(f"  growth 2M -> 6M: {growth:+.1%} (target within 20%)")
            distinct = peak_rss_mb(f"cat {events} | " + aggregate)
            print(f"  default horizon, {n:,} distinct events: {distinct:6.1f} MB (target < 150 MB)")
            bench.results["memory"] = {"horizon60_2M_mb": mem[2_000_000],
                                       "horizon60_6M_mb": mem[6_000_000], "distinct_default_mb": distinct}
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(bench.results, indent=2))
        print(f"\nresults: {opts.json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for leftover in (ROOT / "bench-out").glob("evtool-bench-db-*"):
            shutil.rmtree(leftover, ignore_errors=True)


if __name__ == "__main__":
    main()
