"""Anomalous window counts per (region, source), against an exponentially weighted baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evtool.core.instant import iso_us
from evtool.core.records import name_id


@dataclass(frozen=True)
class AlertConfig:
    threshold: float = 5.0      # z-score above the baseline
    min_excess: int = 10        # and at least this many events above it
    warmup: int = 10            # windows a key must have seen before it can alert
    alpha: float = 0.1          # weight of the newest window in the baseline


@dataclass(slots=True)
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
    _by_region: dict[str, dict[str, Baseline]] = field(default_factory=dict, repr=False)

    def observe(self, start: int, seconds: float, counts: dict[str, dict[str, int]]
                ) -> list[dict[str, Any]]:
        """Alerts for one closed window (counts by region, then source); updates the baselines."""
        cfg, alerts = self.cfg, []
        keys, by_region = self.keys, self._by_region
        for region, by_source in counts.items():
            known = by_region.get(region)
            if known is None:
                known = by_region[region] = {}
            for source in by_source:
                if source not in known:
                    known[source] = keys[(region, source)] = Baseline()
        alpha, threshold, min_excess, warmup = cfg.alpha, cfg.threshold, cfg.min_excess, cfg.warmup
        keep, sqrt = 1 - alpha, math.sqrt
        empty: dict[str, int] = {}
        for region, known in by_region.items():
            by_source = counts.get(region, empty)
            for source, base in known.items():
                count = by_source.get(source, 0)
                mean, learned = base.mean, float(count)
                # the deviation is at least 1, so no count below mean + min_excess can alert
                if count - mean >= min_excess and base.windows >= warmup:
                    spread = max(sqrt(base.var), sqrt(mean), 1.0)
                    score = (count - mean) / spread
                    if score >= threshold:
                        alerts.append(self._alert(start, seconds, region, source, count, mean, score))
                        learned = min(learned, mean + threshold * spread)
                if base.windows == 0:
                    base.mean, base.var = learned, 0.0
                else:
                    delta = learned - mean
                    base.mean = mean + alpha * delta
                    base.var = keep * (base.var + alpha * delta * delta)
                base.windows += 1
        alerts.sort(key=lambda a: (a["region"], a["source"]))
        return alerts

    def _alert(self, start: int, seconds: float, region: str, source: str, count: int,
               mean: float, score: float) -> dict[str, Any]:
        start_iso = iso_us(start)
        return {
            "kind": "alert",
            "alert_id": name_id("alert", region, source, start_iso, seconds),
            "window_start": start_iso,
            "region": region,
            "source": source,
            "count": count,
            "baseline": round(mean, 3),
            "threshold": self.cfg.threshold,
            "score": round(score, 2),
        }
