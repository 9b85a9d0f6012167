"""--metrics-port: Prometheus counters of a running stage, updated once per batch (not per record)."""

from __future__ import annotations

import time

from evtool.core.stats import Stats
from evtool.transports.base import Sink, Source

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, float("inf"))


class StageMetrics:
    """Counters for records in/out, dead letters by reason, duplicates, late, broker reconnects,
    and a histogram of latency from event time to output."""

    def __init__(self, stage: str, port: int, host: str = "127.0.0.1") -> None:
        # imported here: a stage without --metrics-port starts 90 ms sooner
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        self.stage = stage
        self.registry = CollectorRegistry()
        reg, stage_label = self.registry, ["stage"]
        self.records_in = Counter("evtool_records_in", "Records read", stage_label, registry=reg)
        self.records_out = Counter("evtool_records_out", "Records written", stage_label, registry=reg)
        self.dead = Counter("evtool_deadletters", "Dead letters by reason", ["stage", "reason"],
                            registry=reg)
        self.duplicates = Counter("evtool_duplicates", "Duplicate events dropped", stage_label,
                                  registry=reg)
        self.late = Counter("evtool_late", "Late events dead-lettered", stage_label, registry=reg)
        self.reconnects = Counter("evtool_broker_reconnects", "Broker reconnections", stage_label,
                                  registry=reg)
        self.latency = Histogram("evtool_processing_latency_seconds",
                                 "Wall time at output minus the newest event time in the batch",
                                 stage_label, registry=reg, buckets=LATENCY_BUCKETS)
        self._seen: dict[str, int] = {}
        start_http_server(port, addr=host, registry=self.registry)

    def _delta(self, name: str, value: int) -> int:
        before = self._seen.get(name, 0)
        self._seen[name] = value
        return max(0, value - before)

    def update(self, stats: Stats, reconnects: int = 0, event_time: float | None = None) -> None:
        stage = self.stage
        self.records_in.labels(stage).inc(self._delta("in", stats.in_))
        self.records_out.labels(stage).inc(self._delta("out", stats.out))
        self.duplicates.labels(stage).inc(self._delta("dup", stats.duplicates))
        self.late.labels(stage).inc(self._delta("late", stats.late))
        self.reconnects.labels(stage).inc(self._delta("reconnects", reconnects))
        for reason, n in stats.dead.items():
            self.dead.labels(stage, reason).inc(self._delta(f"dead:{reason}", n))
        if event_time is not None and event_time > 0:
            self.latency.labels(stage).observe(max(0.0, time.time() - event_time))


def reconnects_of(*ends: Source | Sink | None) -> int:
    return sum(end.reconnects() for end in ends if end is not None)
