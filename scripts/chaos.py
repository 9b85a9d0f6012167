"""The chaos drill: for a bounded time, SIGKILL random stages and restart them, restart the broker
once, then check that the audit holds every distinct valid event once and that
`replay --verify` passes. Prints a verdict; exits 1 on any loss."""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import time

from cluster import EVTOOL, Cluster, broker_up, ctl, expected_ids, expected_metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=180, help="seconds of chaos (default 180)")
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--seed", type=int, default=7)
    opts = parser.parse_args()
    if not broker_up():
        print("chaos: no RabbitMQ on 127.0.0.1:5672", file=sys.stderr)
        return 2
    rng = random.Random(opts.seed)
    count = int(opts.rate * max(opts.duration - 10, 5))
    gen_args = ["--count", str(count), "--rate", str(opts.rate), "--seed", str(opts.seed),
                "--start", "2026-11-26T00:00:00Z", "--duplicates", "0.02", "--invalid", "0.01"]
    print(f"chaos: {count:,} events at {opts.rate}/s for about {opts.duration:.0f} s; "
          "computing the expected result over pipes ...", flush=True)
    aggregate_args = ("--lateness", "30")
    want = expected_ids(*gen_args)
    want_metrics = expected_metrics(tuple(gen_args), aggregate_args)
    counted = {e for _, _, ids in want_metrics.values() for e in ids}
    # an outage of validate (killed, restarting) must not pass for the end of the input
    cluster = Cluster("evtool-chaos", aggregate_args, idle_flush=60)
    kills: list[str] = []
    broker_restarted = False
    try:
        gen = cluster.gen(*gen_args)
        started = time.monotonic()
        restart_at = started + opts.duration * rng.uniform(0.3, 0.6)
        while gen.poll() is None and time.monotonic() - started < opts.duration + 60:
            time.sleep(rng.uniform(2, 6))
            if not broker_restarted and time.monotonic() >= restart_at:
                print("chaos: restarting the broker", flush=True)
                ctl("stop_app")
                time.sleep(rng.uniform(1, 4))
                ctl("start_app")
                ctl("await_startup")
                broker_restarted = True
                continue
            name = rng.choice(sorted(cluster.stages))
            print(f"chaos: SIGKILL {name}", flush=True)
            cluster.stages[name].kill()
            time.sleep(rng.uniform(0.2, 2))
            cluster.stages[name].start()
            kills.append(name)
        gen_status = gen.wait(timeout=120)
        print("chaos: generator done; waiting for the pipeline to drain ...", flush=True)
        ids, total = cluster.wait_until(want, timeout=180, total_want=len(counted))
        verify = subprocess.run([*EVTOOL, "replay", "--db", str(cluster.db), "--verify"],
                                capture_output=True, text=True)
        stored_metrics = cluster.metrics()
    finally:
        cluster.close()
    missing, extra = len(want - ids), len(ids - want)
    differ = sorted(m for m in want_metrics.keys() | stored_metrics.keys()
                    if want_metrics.get(m) != stored_metrics.get(m))
    in_none = ids - {e for _, _, traced in stored_metrics.values() for e in traced} - (want - counted)
    ok = (gen_status == 0 and not missing and not extra and total == len(counted)
          and verify.returncode == 0 and broker_restarted and not differ and not in_none)
    print(f"chaos: {len(kills)} kills ({', '.join(f'{n} {kills.count(n)}' for n in sorted(set(kills)))}), "
          f"broker restarted: {'yes' if broker_restarted else 'no'}")
    verdict_line = verify.stderr.strip().splitlines()[-1] if verify.stderr.strip() else verify.returncode
    print(f"chaos: metrics: {len(stored_metrics):,} stored, {len(want_metrics):,} over pipes, "
          f"{len(differ)} differ (total, counts or traced events); {len(in_none)} stored events "
          f"in no metric that the pipe run counts")
    for metric_id in differ[:5]:
        print(f"chaos: differs: {metric_id}: stored {_brief(stored_metrics.get(metric_id))}, "
              f"over pipes {_brief(want_metrics.get(metric_id))}")
    print(f"chaos: {len(want):,} distinct valid events expected; stored {len(ids):,} "
          f"(missing {missing}, unexpected {extra}); metric totals add up to {total:,}; "
          f"replay --verify: {verdict_line}")
    if ok:
        print("VERDICT: no loss - every distinct valid event stored exactly once, every metric verified "
              "and equal to the pipe run's")
        shutil.rmtree(cluster.dir, ignore_errors=True)
        return 0
    print(f"VERDICT: LOSS OR MISMATCH - logs kept in {cluster.dir}")
    print(verify.stdout[:2000])
    return 1


def _brief(metric: tuple[int, dict[str, int], tuple[str, ...]] | None) -> str:
    return "none" if metric is None else f"total {metric[0]}, {len(metric[2])} traced"


if __name__ == "__main__":
    sys.exit(main())
