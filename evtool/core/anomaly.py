"""Anomalous window counts per (region, source), against an exponentially weighted baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evtool.core.records import iso_utc, name_id


@dataclass(frozen=True)
class AlertConfig:
    threshold: float = 5.0      # z-score above the baseline
    min_excess: int = 10        # and at least this many events above it
    warmup: int = 10            # windows a key must have seen before it can alert
    alpha: float = 0.1          # weight of the newest window in the baseline


@dataclass
class Baseline:
    mean: float = 0.0
    var: float = 0.0
    windows: int = 0


@dataclass
class AnomalyDetector:
    """Per key, an EWMA mean and variance of counts per window. The deviation used is at least
    sqrt(mean) (counts are at least as noisy as Poisson) and 1, so quiet keys do not alert on
    noise. An alerting window enters the baseline clipped to the threshold, so one burst does
    not teach the detector to ignore the next."""

    cfg: AlertConfig = field(default_factory=AlertConfig)
    keys: dict[tuple[str, str], Baseline] = field(default_factory=dict)

    def observe(self, start: float, seconds: float, counts: dict[str, dict[str, int]]
                ) -> list[dict[str, Any]]:
        """Alerts for one closed window (counts by region, then source); updates the baselines."""
        cfg, alerts = self.cfg, []
        for region, by_source in counts.items():
            for source in by_source:
                self.keys.setdefault((region, source), Baseline())
        for (region, source), base in self.keys.items():
            count = counts.get(region, {}).get(source, 0)
            spread = max(math.sqrt(base.var), math.sqrt(base.mean), 1.0)
            score = (count - base.mean) / spread
            alerting = (base.windows >= cfg.warmup and score >= cfg.threshold
                        and count - base.mean >= cfg.min_excess)
            if alerting:
                start_iso = iso_utc(start)
                alerts.append({
                    "kind": "alert",
                    "alert_id": name_id("alert", region, source, start_iso, seconds),
                    "window_start": start_iso,
                    "region": region,
                    "source": source,
                    "count": count,
                    "baseline": round(base.mean, 3),
                    "threshold": cfg.threshold,
                    "score": round(score, 2),
                })
            learned = min(count, base.mean + cfg.threshold * spread) if alerting else count
            if base.windows == 0:
                base.mean, base.var = float(learned), 0.0
            else:
                delta = learned - base.mean
                base.mean += cfg.alpha * delta
                base.var = (1 - cfg.alpha) * (base.var + cfg.alpha * delta * delta)
            base.windows += 1
        alerts.sort(key=lambda a: (a["region"], a["source"]))
        return alerts
