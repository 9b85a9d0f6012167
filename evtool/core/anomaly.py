"""Anomalous window counts per (region, source), against an exponentially weighted baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from evtool.core.instant import iso_us
from evtool.core.records import name_id


@dataclass(frozen=True)
class AlertConfig:
    threshold: float = 5.0      # z-score above the baseline
    min_excess: int = 10        # and at least this many events above it
    warmup: int = 10            # windows a key must have seen before it can alert
    alpha: float = 0.1          # weight of the newest window in the baseline
    max_keys: int = 100_000     # baselines kept; beyond, the longest unseen are forgotten


@dataclass(slots=True)
class Baseline:
    mean: float = 0.0
    var: float = 0.0
    windows: int = 0
    learned_at: int = 0         # the detector's window number when it last learned (saw it)


@dataclass
class AnomalyDetector:
    """Per key, an EWMA mean and variance of counts per window. The deviation used is at least
    sqrt(mean) (counts are at least as noisy as Poisson) and 1, so quiet keys do not alert on
    noise. An alerting window enters the baseline clipped to the threshold, so one burst does
    not teach the detector to ignore the next. A key absent from a window counts zero there,
    learned when it is next seen (a zero never alerts): a window costs its keys, not all keys.
    Past `max_keys` baselines, those unseen the longest are forgotten (a key back after that
    needs its warm-up again), so memory stays bounded however many regions the events name."""

    cfg: AlertConfig = field(default_factory=AlertConfig)
    _by_region: dict[str, dict[str, Baseline]] = field(default_factory=dict, repr=False)
    _windows: int = 0
    _keys: int = 0

    def baseline(self, region: str, source: str) -> Baseline | None:
        """A key's baseline as of the last window observed, zeros since it was seen included
        (a copy: looking changes nothing)."""
        base = self._by_region.get(region, {}).get(source)
        if base is None:
            return None
        caught_up = replace(base, learned_at=self._windows)
        self._learn_zeros(caught_up, self._windows - base.learned_at)
        return caught_up

    @property
    def keys(self) -> int:
        """How many baselines are kept."""
        return self._keys

    def _learn_zeros(self, base: Baseline, missed: int) -> None:
        """`missed` windows of count zero, each learned as observe learns one, until a zero
        changes nothing more (a few thousand windows: the floats reach a fixed point), so a key
        back after any absence costs at most that."""
        if missed <= 0:
            return
        alpha = self.cfg.alpha
        keep = 1 - alpha
        mean, var = base.mean, base.var
        for _ in range(missed):
            delta = 0.0 - mean
            learned_mean, learned_var = mean + alpha * delta, keep * (var + alpha * delta * delta)
            if learned_mean == mean and learned_var == var:
                break
            mean, var = learned_mean, learned_var
        base.mean, base.var = mean, var
        base.windows += missed

    def observe(self, start: int, seconds: float, counts: dict[str, dict[str, int]]
                ) -> list[dict[str, Any]]:
        """Alerts for one closed window (counts by region, then source); updates the baselines."""
        cfg, alerts, by_region = self.cfg, [], self._by_region
        self._windows = now = self._windows + 1
        alpha, threshold, min_excess, warmup = cfg.alpha, cfg.threshold, cfg.min_excess, cfg.warmup
        keep, sqrt, learn_zeros = 1 - alpha, math.sqrt, self._learn_zeros
        for region, by_source in counts.items():
            known = by_region.get(region)
            if known is None:
                known = by_region[region] = {}
            for source, count in by_source.items():
                base = known.get(source)
                if base is None:
                    base = known[source] = Baseline(learned_at=now - 1)
                    self._keys += 1
                elif base.learned_at < now - 1:
                    learn_zeros(base, now - 1 - base.learned_at)
                base.learned_at = now
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
        if self._keys > cfg.max_keys:
            self._forget(now)
        alerts.sort(key=lambda a: (a["region"], a["source"]))
        return alerts

    def _forget(self, now: int) -> None:
        """The baselines unseen the longest, down to three quarters of `max_keys` (a stream of
        new keys sweeps once in many windows), oldest first, ties by key; never this window's."""
        by_region = self._by_region
        over = self._keys - self.cfg.max_keys * 3 // 4
        seen = sorted(base.learned_at for known in by_region.values() for base in known.values())
        cut = min(seen[over - 1], now - 1)
        gone = sorted((base.learned_at, region, source) for region, known in by_region.items()
                      for source, base in known.items() if base.learned_at <= cut)[:over]
        for _, region, source in gone:
            known = by_region[region]
            del known[source]
            if not known:
                del by_region[region]
        self._keys -= len(gone)

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
