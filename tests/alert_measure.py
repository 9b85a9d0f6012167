"""How well aggregate's alerts find bursts, and how often they fire without any.

`python -m tests.alert_measure` prints the numbers; tests/test_anomaly.py holds them to the
targets (>= 80% of burst windows alerted; <= 1 alert per 1,000 windows without bursts).
"""

from __future__ import annotations

from collections import Counter

import orjson

from evtool.core.aggregate import AggregateConfig, AggregateStage
from evtool.core.generator import GenConfig, Generator
from evtool.core.instant import iso_us
from evtool.core.stats import Stats
from evtool.schemas import load_pack
from tests.conftest import checker
from tests.reference import event_time

T0_US = 1_795_000_000 * 1_000_000


def measure(windows: int, burst_probability: float, burst_size: int = 50, seed: int = 1,
            window: float = 5.0, rate: float = 10.0) -> dict:
    count = int(windows * window * rate)
    cfg = GenConfig(start_us=T0_US, pack=load_pack(), count=count, seed=seed, rate=rate,
                    burst_probability=burst_probability, burst_size=burst_size)
    lines = [line for _, line, _ in Generator(cfg)]
    stage = AggregateStage(AggregateConfig(window=window), Stats(), checker())
    out: list[bytes] = []
    for i in range(0, len(lines), 5000):
        stage.process(lines[i:i + 5000], out, out)
    stage.finish(out, out)
    records = [orjson.loads(x) for x in out]
    alerts = {(a["window_start"], a["region"], a["source"]) for a in records if a["kind"] == "alert"}
    n_windows = sum(1 for r in records if r["kind"] == "window")
    by_corr: dict[str, list[dict]] = {}
    for line in lines:
        ev = orjson.loads(line)
        by_corr.setdefault(ev["correlation_id"], []).append(ev)
    burst_windows = set()
    for members in by_corr.values():
        if len(members) < burst_size // 2:
            continue
        per_window = Counter(
            (iso_us(int(event_time(m["timestamp"]) // window * window * 1_000_000)), m["region"])
            for m in members)
        for (start, region), n in per_window.items():
            if n >= burst_size // 2:
                burst_windows.add((start, region, "security.incident"))
    found = len(burst_windows & alerts)
    return {"windows": n_windows, "burst_windows": len(burst_windows), "alerted_bursts": found,
            "alerts": len(alerts), "false_alerts": len(alerts - burst_windows)}


if __name__ == "__main__":
    with_bursts = measure(5500, burst_probability=0.0015)
    share = with_bursts["alerted_bursts"] / with_bursts["burst_windows"]
    print("with bursts:   ", with_bursts, f"-> {share:.1%} of burst windows alerted")
    quiet = measure(6000, burst_probability=0.0)
    per_1000 = 1000 * quiet["alerts"] / quiet["windows"]
    print("without bursts:", quiet, f"-> {per_1000:.2f} alerts per 1,000 windows")
