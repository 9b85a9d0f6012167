"""Alerts: timelines of the detector, and its measured quality over thousands of windows."""

from __future__ import annotations

import pytest

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
    before = det.keys[("maule", "security.incident")].mean
    det.observe(100_000_000, 5, {"aysen": {"migration.case": 1}})        # maule absent: a zero for it
    assert det.keys[("maule", "security.incident")].mean < before


@pytest.mark.slow
def test_alert_quality_over_thousands_of_windows() -> None:
    bursts = measure(5500, burst_probability=0.0015)
    assert bursts["windows"] >= 5000 and bursts["burst_windows"] >= 100
    assert bursts["alerted_bursts"] >= 0.8 * bursts["burst_windows"]
    quiet = measure(5200, burst_probability=0.0)
    assert quiet["windows"] >= 5000
    assert quiet["alerts"] <= quiet["windows"] / 1000
