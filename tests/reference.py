"""An independent, deliberately naive aggregator written from the contract's words (§3).

It shares no code with evtool: stdlib json, no expiry, no inlining. Tests compare evtool's
windows with what this computes.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import datetime


def event_time(text: str) -> float:
    """Seconds since the epoch. Python 3.10's fromisoformat takes neither `Z` nor a fraction of
    other than 3 or 6 digits, so the fraction is read apart."""
    found = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)", text.replace("Z", "+00:00"))
    assert found is not None, text
    whole, fraction, offset = found.groups()
    seconds = datetime.fromisoformat(whole + offset).timestamp()
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def reference(lines: list[bytes], window: float, lateness: float) -> dict:
    """{window_start_epoch: {"counts": Counter((region, source)), "ids": sorted ids}} plus tallies."""
    seen: set[str] = set()
    newest = -math.inf
    windows: dict[int, list[dict]] = {}
    duplicates = late = 0
    for line in lines:
        ev = json.loads(line)
        if "kind" in ev:
            continue
        at = event_time(ev["timestamp"])
        if ev["event_id"] in seen:
            duplicates += 1
            continue
        seen.add(ev["event_id"])            # seen, even if late: a later copy is a duplicate
        index = math.floor(at / window)
        watermark = newest - lateness
        if (index + 1) * window <= watermark:
            late += 1
            continue
        windows.setdefault(index, []).append(ev)
        newest = max(newest, at)
    result = {
        index * window: {
            "counts": Counter((e["region"], e["source"]) for e in events),
            "ids": sorted(e["event_id"] for e in events),
        }
        for index, events in windows.items()
    }
    return {"windows": result, "duplicates": duplicates, "late": late}


def windows_of(records: list[dict]) -> dict:
    """evtool's window records in the reference's shape."""
    out = {}
    for rec in records:
        if rec.get("kind") != "window":
            continue
        start = event_time(rec["window_start"])
        assert start not in out, f"window {rec['window_start']} emitted twice"
        counts: Counter[tuple[str, str]] = Counter()
        for region, by_source in rec["by_region_source"].items():
            for source, n in by_source.items():
                counts[(region, source)] += n
        out[start] = {"counts": counts, "ids": rec["event_ids"]}
    return out
