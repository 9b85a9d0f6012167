"""Alerts: timelines of the detector, and its measured quality over thousands of windows."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evtool.core.anomaly import AlertConfig, AnomalyDetector
from tests.alert_measure import measure


def feed(det: AnomalyDetector, counts: list[int], key=("maule", "security.incident")) -> list[list]:
    """Windows of 5 s, their starts in microseconds."""
    region, source = key
    return [det.observe(i * 5_000_000, 5, {region: {source: n}} if n else {}) for i, n in enumerate(counts)]


def test_no_alert_before_warmup_even_for_a_huge_count() -> None:
    det = AnomalyDetector(AlertConfig(warmup=10))
    out = feed(det, [2, 2, 200])                   # window 3 is huge, but the baseline is 2 windows old
    assert not any(out)


def test_a_burst_after_a_steady_baseline_alerts_once_with_its_numbers() -> None:
    det = AnomalyDetector(AlertConfig(threshold=5, min_excess=10, warmup=10))
    out = feed(det, [3] * 20 + [60] + [3] * 5)
    fired = [(i, a) for i, alerts in enumerate(out) for a in alerts]
    assert [i for i, _ in fired] == [20]
    alert = fired[0][1]
    assert alert["count"] == 60 and alert["baseline"] == 3 and alert["score"] >= 5
    assert alert["window_start"] == "1970-01-01T00:01:40Z"        # window 20 of 5 s
    assert alert == feed(AnomalyDetector(AlertConfig(threshold=5, min_excess=10, warmup=10)),
                         [3] * 20 + [60])[20][0]  # deterministic, alert_id included


def test_small_excess_on_a_quiet_key_does_not_alert() -> None:
    det = AnomalyDetector(AlertConfig(threshold=3, min_excess=10, warmup=5))
    assert not any(feed(det, [0] * 30 + [9]))      # 9 over a baseline of 0 is under min_excess


def test_one_burst_does_not_hide_the_next() -> None:
    det = AnomalyDetector(AlertConfig(threshold=5, min_excess=10, warmup=10))
    out = feed(det, [3] * 20 + [80] + [3] * 3 + [80])
    assert [i for i, alerts in enumerate(out) if alerts] == [20, 24]


def test_absent_keys_count_as_zero() -> None:
    det = AnomalyDetector(AlertConfig(warmup=2, min_excess=10))
    feed(det, [20, 20, 20])
    before = det.baseline("maule", "security.incident")
    assert before is not None and before.windows == 3
    mean = before.mean
    det.observe(100_000_000, 5, {"aysen": {"migration.case": 1}})        # maule absent: a zero for it
    after = det.baseline("maule", "security.incident")
    assert after is not None and after.mean < mean and after.windows == 4


@pytest.mark.slow
def test_alert_quality_over_thousands_of_windows() -> None:
    bursts = measure(5500, burst_probability=0.0015)
    assert bursts["windows"] >= 5000 and bursts["burst_windows"] >= 100
    assert bursts["alerted_bursts"] >= 0.8 * bursts["burst_windows"]
    quiet = measure(5200, burst_probability=0.0)
    assert quiet["windows"] >= 5000
    assert quiet["alerts"] <= quiet["windows"] / 1000


class EagerOracle:
    """The detector's rule learned eagerly: every known key, every window, a zero when absent;
    past max_keys, the keys seen longest ago (then by key) forgotten down to three quarters."""

    def __init__(self, cfg: AlertConfig) -> None:
        self.cfg = cfg
        self.keys: dict[tuple[str, str], list[float]] = {}      # mean, var, windows
        self.seen: dict[tuple[str, str], int] = {}
        self.window = 0

    def observe(self, counts: dict[str, dict[str, int]]) -> list[tuple[str, str, int, float, float]]:
        cfg, alerts = self.cfg, []
        self.window += 1
        for region, by_source in counts.items():
            for source in by_source:
                self.keys.setdefault((region, source), [0.0, 0.0, 0])
                self.seen[region, source] = self.window
        for (region, source), base in self.keys.items():
            count = counts.get(region, {}).get(source, 0)
            mean, var, windows = base
            learned = float(count)
            if count - mean >= cfg.min_excess and windows >= cfg.warmup:
                spread = max(math.sqrt(var), math.sqrt(mean), 1.0)
                score = (count - mean) / spread
                if score >= cfg.threshold:
                    alerts.append((region, source, count, round(mean, 3), round(score, 2)))
                    learned = min(learned, mean + cfg.threshold * spread)
            if windows == 0:
                base[:] = [learned, 0.0, 1]
            else:
                delta = learned - mean
                base[:] = [mean + cfg.alpha * delta,
                           (1 - cfg.alpha) * (var + cfg.alpha * delta * delta), windows + 1]
        if len(self.keys) > cfg.max_keys:
            old = sorted((self.seen[key], key) for key in self.keys if self.seen[key] < self.window)
            for _, key in old[:len(self.keys) - cfg.max_keys * 3 // 4]:
                del self.keys[key], self.seen[key]
        return sorted(alerts)


KEYS = [(region, source) for region in ("aysen", "maule", "nuble") for source in ("a", "b", "c")]
WINDOWS = st.lists(st.dictionaries(st.sampled_from(KEYS), st.one_of(
    st.integers(1, 6), st.integers(30, 200)), max_size=len(KEYS)), min_size=1, max_size=80)


def held_to_the_oracle(cfg: AlertConfig, windows: list[dict[tuple[str, str], int]]) -> None:
    """The detector and the eager oracle over the same windows: the same alerts, the same
    number of keys after each, the same keys and baselines (to the bit) at the end."""
    det, oracle = AnomalyDetector(cfg), EagerOracle(cfg)
    for i, window in enumerate(windows):
        counts: dict[str, dict[str, int]] = {}
        for (region, source), n in window.items():
            counts.setdefault(region, {})[source] = n
        got = [(a["region"], a["source"], a["count"], a["baseline"], a["score"])
               for a in det.observe(i * 5_000_000, 5, counts)]
        assert got == oracle.observe(counts)
        assert det.keys == len(oracle.keys)
    for region, source in KEYS:
        base, kept = det.baseline(region, source), oracle.keys.get((region, source))
        assert (base is None) == (kept is None)
        assert base is None or [base.mean, base.var, base.windows] == kept


@settings(max_examples=300, deadline=None)
@given(WINDOWS, st.integers(1, 12), st.floats(1.0, 6.0))
def test_a_key_absent_for_windows_learns_them_as_the_eager_rule_does(
        windows: list[dict[tuple[str, str], int]], warmup: int, threshold: float) -> None:
    """Zeros learned late, when a key is seen again, give the same alerts and the same baselines
    to the bit as learning every key in every window."""
    held_to_the_oracle(AlertConfig(threshold=threshold, min_excess=10, warmup=warmup), windows)


@settings(max_examples=300, deadline=None)
@given(WINDOWS, st.integers(1, 8), st.integers(1, 4))
def test_past_max_keys_the_keys_forgotten_and_kept_are_the_eager_rules(
        windows: list[dict[tuple[str, str], int]], max_keys: int, warmup: int) -> None:
    """The same alerts, the same keys kept, the same baselines, as an eager rule that forgets
    the keys seen longest ago (ties by key) whenever it holds more than max_keys."""
    held_to_the_oracle(AlertConfig(threshold=3.0, min_excess=10, warmup=warmup, max_keys=max_keys),
                       windows)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5])
def test_a_key_back_after_any_absence_learns_its_zeros_exactly_and_at_once(alpha: float) -> None:
    """Learning stops where another zero changes nothing: 50,000 missed windows give the
    eager rule's baseline to the bit, and a hundred million more take no longer."""
    cfg = AlertConfig(alpha=alpha, warmup=1)
    det, oracle = AnomalyDetector(cfg), EagerOracle(cfg)
    for n in (40, 55, 47):
        det.observe(0, 5, {"maule": {"a": n}})
        oracle.observe({"maule": {"a": n}})
    for _ in range(50_000):
        det.observe(0, 5, {})
        oracle.observe({})
    mean, var, seen = oracle.keys["maule", "a"]
    base = det.baseline("maule", "a")
    assert base is not None and (base.mean, base.var, base.windows) == (mean, var, seen)
    assert 0 < mean < 1e-300
    det._windows += 10**8       # windows without the key, as observe counts them
    started = time.process_time()
    base = det.baseline("maule", "a")
    assert base is not None and (base.mean, base.var, base.windows) == (mean, var, seen + 10**8)
    assert time.process_time() - started < 2
    assert det.observe(0, 5, {"maule": {"a": 11}})      # a burst over the decayed baseline alerts


def test_baselines_stay_within_max_keys_and_the_keys_kept_are_learned_as_without_a_cap() -> None:
    """A stream naming a new region in every event (a device id as the region, say) keeps at
    most `max_keys` baselines; a key seen all along is never the one forgotten, so its
    baseline and alerts are those of a detector with no cap."""
    capped, free = AnomalyDetector(AlertConfig(max_keys=50)), AnomalyDetector(AlertConfig())
    alerted = 0
    for window in range(400):
        counts = {f"device-{window}-{i}": {"s": 1} for i in range(7)}
        counts["maule"] = {"s": 60 if window % 97 == 96 else 5 + window % 3}
        got = capped.observe(window * 5_000_000, 5, counts)
        assert got == free.observe(window * 5_000_000, 5, counts)
        assert capped.keys <= 50
        alerted += len(got)
    assert free.keys == 400 * 7 + 1 and alerted == 4          # maule's four bursts
    assert capped.baseline("maule", "s") == free.baseline("maule", "s")
    assert capped.baseline("device-0-0", "s") is None
    assert capped.baseline("device-399-6", "s") == free.baseline("device-399-6", "s")


def test_the_keys_unseen_longest_are_forgotten_first_and_warm_up_again() -> None:
    """Past the cap, down to three quarters of it, oldest first: one key a window for 20
    windows, then 3 new keys at once, forgets the first 8."""
    det, free = AnomalyDetector(AlertConfig(max_keys=20, warmup=5)), AnomalyDetector(AlertConfig(warmup=5))
    history = [{f"k{i}": {"s": 3}} for i in range(20)] + [{"x": {"s": 1}, "y": {"s": 1}, "z": {"s": 1}}]
    for counts in history:
        det.observe(0, 5, counts)
        free.observe(0, 5, counts)
    assert det.keys == 15
    assert [det.baseline(f"k{i}", "s") is None for i in range(10)] == [True] * 8 + [False] * 2
    burst = {"k0": {"s": 80}}
    assert free.observe(0, 5, burst) and not det.observe(0, 5, burst)     # k0 warms up again
