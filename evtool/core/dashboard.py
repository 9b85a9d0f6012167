"""What the dashboard knows: counts folded from the records it reads, and a JSON-ready snapshot."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from evtool.core.derived import DerivedChecker
from evtool.core.instant import MICROS, instant_us
from evtool.core.records import parse
from evtool.core.roles import Roles
from evtool.core.wire import Topology, Wire

TREND = 60
ALERTS = 10
REMEMBERED = 100_000


class Recent:
    """The last `size` to 2 x `size` keys seen, so a record delivered twice is counted once, in
    bounded memory: two generations of sets, the older dropped whole (cheaper than evicting
    one key per insert)."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self.new: set[Any] = set()
        self.old: set[Any] = set()

    def seen(self, key: Any) -> bool:
        """True if `key` came before; otherwise remember it."""
        if key in self.new or key in self.old:
            return True
        self.new.add(key)
        if len(self.new) >= self.size:
            self.old, self.new = self.new, set()
        return False


@dataclass
class DashboardStats:
    """Folds window, metric, alert, dead-letter and event records; pure, no clock inside."""

    records: int = 0
    unreadable: int = 0
    events: int = 0
    windows: int = 0
    metrics: int = 0
    duplicates: int = 0
    total: Counter[tuple[str, str]] = field(default_factory=Counter)
    latest: dict[str, Any] = field(default_factory=dict)
    dead: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    recent_alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ALERTS))
    recent: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_dead: Counter[str] = field(default_factory=Counter)
    newest_end: float | None = None
    first_start: float | None = None
    repeated: int = 0
    rejected: int = 0
    ids: Recent = field(default_factory=Recent)
    checker: DerivedChecker | None = None
    wire: Wire = field(default_factory=lambda: Wire({}, Topology()))
    roles: Roles = field(default_factory=Roles)

    def _repeat(self, key: Any) -> bool:
        """A window, metric or alert seen before (broker redelivery, or an aggregate restarted
        after emitting it re-emits a partial copy): count it once, as the audit table does."""
        if self.ids.seen(key):
            self.repeated += 1
            return True
        return False

    def feed(self, lines: list[bytes]) -> None:
        loads = parse
        for line in lines:
            self.records += 1
            try:
                rec = loads(line)
            except orjson.JSONDecodeError:
                if line.strip():
                    self.unreadable += 1
                else:                           # blank, as every stage counts it: not a record
                    self.records -= 1
                continue
            if type(rec) is not dict:
                self.unreadable += 1
                continue
            kind = rec.get("kind") if self.roles.is_derived(rec) else None
            if kind is None:
                adapted = self.wire.as_evtool_or_none(rec)  # the pack's foreign shapes, checked there
                if adapted is not None:
                    rec, kind = adapted, adapted["kind"]
                    self._fold(rec, kind)
                    continue
            if kind is None:
                self.events += 1
                continue
            if self.checker is not None and self.checker.problem(rec) is not None:
                self.rejected += 1
            else:
                self._fold(rec, kind)

    def _fold(self, rec: dict[str, Any], kind: Any) -> None:
        if kind == "window":
            self._window(rec)
        elif kind == "metric":
            if not self._repeat(rec.get("metric_id")):
                self.metrics += 1
        elif kind == "deadletter":
            reason = str(rec.get("reason"))
            self.dead[reason] += 1
            self.pending_dead[reason] += 1
        elif kind == "alert" and not self._repeat(rec.get("alert_id")):
            self.alerts += 1
            self.recent_alerts.appendleft(rec)
            start = rec.get("window_start")
            marked = self.recent.get(start) if isinstance(start, str) else None
            if marked is not None:
                marked["alerts"] += 1

    def _window(self, rec: dict[str, Any]) -> None:
        try:
            start = instant_us(rec["window_start"]) / MICROS
            end = instant_us(rec["window_end"]) / MICROS
            cells = {(r, s): int(n) for r, by in rec["by_region_source"].items() for s, n in by.items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            self.unreadable += 1
            return
        if self._repeat((rec["window_start"], rec["window_end"], rec.get("partition"))):
            return
        self.windows += 1
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        self.total.update(cells)
        self.duplicates += int(rec.get("duplicates", 0) or 0)
        # partitions each send their part of a window: parts with the same start are one window
        merged = self.recent.get(rec["window_start"])
        if merged is None:
            # dead letters read since the last new window came from the events of this one
            merged = self.recent[rec["window_start"]] = {
                "window_start": rec["window_start"], "window_end": rec["window_end"],
                "seconds": max(end - start, 1e-9), "cells": Counter(), "at": start,
                "duplicates": 0, "dead": self.pending_dead, "alerts": 0}
            self.pending_dead = Counter()
            while len(self.recent) > TREND:
                del self.recent[min(self.recent, key=lambda k: self.recent[k]["at"])]
        merged["cells"].update(cells)
        merged["duplicates"] += int(rec.get("duplicates", 0) or 0)
        if self.newest_end is None or end >= self.newest_end:
            self.newest_end = end
            self.latest = merged

    def snapshot(self, now: float, source: str = "", ended: bool = False) -> dict[str, Any]:
        """Everything shown, as plain JSON types; `now` is the caller's wall clock, `ended` whether
        the input has ended."""
        def nested(cells: Counter[tuple[str, str]] | dict[tuple[str, str], int]) -> dict[str, Any]:
            out: dict[str, dict[str, int]] = {}
            for (region, src), n in sorted(cells.items()):
                out.setdefault(region, {})[src] = n
            return out

        by_source: Counter[str] = Counter()
        by_region: Counter[str] = Counter()
        for (region, src), n in self.total.items():
            by_source[src] += n
            by_region[region] += n
        latest: dict[str, Any] = {}
        if self.latest:
            cells = self.latest["cells"]
            latest = {"window_start": self.latest["window_start"],
                      "window_end": self.latest["window_end"], "total": sum(cells.values()),
                      "by_region_source": nested(cells)}
        ordered = sorted(self.recent.values(), key=lambda w: w["at"])
        # the stream may cover its first window and, once it ended, its last only in part
        series = [point(w, w["at"] == self.first_start or (ended and i == len(ordered) - 1))
                  for i, w in enumerate(ordered)]
        lag = None if self.newest_end is None else round(now - self.newest_end, 3)
        return {
            "source": source,
            "input_ended": ended,
            "records": self.records,
            "unreadable": self.unreadable,
            "events": self.events,
            "windows": self.windows,
            "metrics": self.metrics,
            "totals": {"total": sum(self.total.values()), "by_source": dict(sorted(by_source.items())),
                       "by_region": dict(sorted(by_region.items())),
                       "by_region_source": nested(self.total)},
            "latest_window": latest or None,
            "deadletters": {"total": sum(self.dead.values()), "by_reason": dict(sorted(self.dead.items()))},
            "duplicates": self.duplicates,
            "repeated": self.repeated,
            "rejected": self.rejected,
            "late": self.dead.get("late", 0),
            "alerts": {"total": self.alerts, "latest": list(self.recent_alerts)},
            "events_per_s": [{"window_start": p["window_start"], "rate": p["rate"]} for p in series],
            "series": series,
            "watermark_lag_s": lag,
            "watermark": {"newest_window_end": self.latest.get("window_end") if self.latest else None,
                          "lag_s": lag, "meaning": lag_meaning(lag)},
        }


def point(window: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """One window of the series the page and the terminal draw: rates by source, and what went
    wrong while it was the newest (dead letters by reason, late, duplicates, alerts). `partial`:
    the stream may cover it only in part (its rate is then no rate of the source)."""
    by_source: Counter[str] = Counter()
    for (_region, src), n in window["cells"].items():
        by_source[src] += n
    seconds = window["seconds"]
    return {"window_start": window["window_start"], "window_end": window["window_end"],
            "events": sum(by_source.values()), "rate": round(sum(by_source.values()) / seconds, 2),
            "by_source": {s: round(n / seconds, 2) for s, n in sorted(by_source.items())},
            "duplicates": window["duplicates"], "dead": dict(sorted(window["dead"].items())),
            "late": window["dead"].get("late", 0), "alerts": window["alerts"], "partial": partial}


def span(seconds: float) -> str:
    """A duration as people say it: `3.2 s`, `4 min 12 s`, `1 h 34 min`, `2 d 3 h`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    for unit, size, smaller, small_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60),
                                            ("min", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size} {unit} {whole % size // small_size} {smaller}"
    return f"{seconds:.0f} s"  # pragma: no cover - every value >= 60 matched above


def lag_meaning(lag: float | None) -> str:
    """Watermark lag in words: how far the newest closed window trails this machine's clock."""
    if lag is None:
        return "no window closed yet"
    if lag < 0:
        return (f"newest window ends {span(-lag)} after this machine's clock: event time runs ahead "
                "(a fast or simulated source)")
    text = f"newest window ended {span(lag)} before this machine's clock"
    return text + (" (old events: a replay or a backlog)" if lag > 3600 else "")
