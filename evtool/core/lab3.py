"""lab3's record shapes on the wire, both ways: what its services read from evtool's records, and
evtool's records made from what its services write.

lab3's aggregator publishes a `window_summary` (no kind) and metrics with `metrics` and `run_id`
(no kind, a random metric_id, no window); its validator's dead letters are `{"original_event",
"error", "failed_at", "service"}`. evtool's records carry lab3's fields beside their own (lab3
ignores the rest), and every evtool stage reads lab3's shapes as the derived records they are.
"""

from __future__ import annotations

from typing import Any

import orjson

from evtool.core.instant import TimeError, instant_us, iso_us

RUN_ID = "default"


def window_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What lab3's dashboard reads from a window, beside evtool's fields."""
    return {"type": "window_summary", "window_start_iso": record["window_start"],
            "window_end_iso": record["window_end"], "total_processed": record["total"],
            "stats_by_region": record["by_region_source"]}


def metric_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What lab3's audit stores of a metric (it needs `metrics` and `run_id`)."""
    return {"metrics": record["counts"], "run_id": RUN_ID}


def deadletter_fields(raw: Any, failed_at: str) -> dict[str, Any]:
    """lab3's dead-letter shape: the event (or its text when it is not JSON), when, and who."""
    return {"original_event": raw, "failed_at": failed_at, "service": "validator"}


def _utc_text(text: Any) -> str:
    """lab3 writes its window times as naive local ISO times (its containers run in UTC)."""
    if type(text) is not str:
        raise TimeError(f"{text!r} is not a time")
    try:
        return iso_us(instant_us(text))
    except TimeError:
        return iso_us(instant_us(text + "Z"))


def as_evtool(record: dict[str, Any]) -> dict[str, Any] | None:
    """The evtool derived record for one of lab3's shapes (no `kind`), or None for anything else
    (an event). A lab3 shape that does not hold together is a ValueError naming the field."""
    if record.get("type") == "window_summary":
        stats = record.get("stats_by_region")
        if not isinstance(stats, dict) or not all(
                isinstance(by, dict) and all(type(n) is int and n >= 0 for n in by.values())
                for by in stats.values()):
            raise ValueError("stats_by_region must map region to {source: count}")
        by_source: dict[str, int] = {}
        for by in stats.values():
            for source, n in by.items():
                by_source[source] = by_source.get(source, 0) + n
        try:
            start, end = _utc_text(record.get("window_start_iso")), _utc_text(record.get("window_end_iso"))
        except TimeError as exc:
            raise ValueError(f"window_start_iso/window_end_iso: {exc}") from None
        total = sum(by_source.values())
        return {"kind": "window", "window_start": start, "window_end": end, "total": total,
                "by_source": by_source, "by_region": {r: sum(by.values()) for r, by in stats.items()},
                "by_region_source": stats, "event_ids": []}
    if "metrics" in record and "metric_id" in record and "event_id" not in record:
        counts = record["metrics"]
        if not isinstance(counts, dict) or not all(type(n) is int and n >= 0 for n in counts.values()):
            raise ValueError("metrics must map source to a count")
        ids = record.get("input_event_ids", [])
        if not isinstance(ids, list) or not all(type(i) is str for i in ids):
            raise ValueError("input_event_ids must be a list of strings")
        for field in ("metric_id", "date", "region"):
            if type(record.get(field)) is not str:
                raise ValueError(f"{field}: missing or not a string")
        day = record["date"]
        return {"kind": "metric", "metric_id": record["metric_id"], "date": day,
                "region": record["region"], "window_start": f"{day}T00:00:00Z",
                "window_end": f"{day}T00:00:00Z", "window_seconds": 0, "counts": counts,
                "total": sum(counts.values()), "input_event_ids": ids}
    if "original_event" in record and "service" in record and "event_id" not in record:
        raw = record["original_event"]
        return {"kind": "deadletter", "stage": str(record.get("service")), "reason": "schema",
                "error": str(record.get("error", "")),
                "raw": raw if isinstance(raw, str) else orjson.dumps(raw).decode()}
    return None


def as_evtool_or_none(record: dict[str, Any]) -> dict[str, Any] | None:
    """as_evtool, with a lab3 shape that does not hold together read as no shape at all."""
    try:
        return as_evtool(record)
    except ValueError:
        return None
