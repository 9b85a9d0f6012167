"""Metric lines as aggregate writes them (sorted keys, compact, plain ASCII), read without a parse.

A metric costs audit four times an event when parsed and checked field by field (the id list
is the bulk of the line). A line that fully matches `METRIC_LINE` and passes `read`'s checks is
one the metric schema (records/metric.json) and the metric invariants accept, with no duplicate
key; anything else gives None and takes the parsing path, which decides and explains.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

from evtool.core.instant import bound_us
from evtool.core.lineshape import PLAIN

MAX_COUNT = 2_147_483_647
_INSTANT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z"
_COUNT = r"(?:0|[1-9][0-9]{0,9})"
_CELL = f'"{PLAIN}*":{_COUNT}'
_ID = f'"{PLAIN}*"'
METRIC_LINE = re.compile(
    rf'\{{"counts":(?P<counts>\{{(?:{_CELL}(?:,{_CELL})*)?\}}),'
    r'"date":"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})",'
    rf'"input_event_ids":\[(?P<ids>(?:{_ID}(?:,{_ID})*)?)\],'
    rf'"kind":"metric","metric_id":"(?P<metric_id>{PLAIN}+)","region":"(?P<region>{PLAIN}*)",'
    rf'"total":(?P<total>{_COUNT}),"window_end":"(?P<end>{_INSTANT})",'
    rf'"window_seconds":(?P<seconds>[1-9][0-9]{{0,9}}),"window_start":"(?P<start>{_INSTANT})"\}}'
)


class MetricLine(NamedTuple):
    """The fields of a metric line; `counts` as compact JSON, `ids` as the list's inside."""

    metric_id: str
    date: str
    region: str
    window_start: str
    window_end: str
    window_seconds: int
    counts: str
    total: int
    ids: str

    def event_ids(self) -> list[str]:
        return self.ids[1:-1].split('","') if self.ids else []


def read(text: str) -> MetricLine | None:
    """The metric in `text` if it is certainly valid; None for the parsing path to judge."""
    found = METRIC_LINE.fullmatch(text)
    if found is None:
        return None
    counts_text, date, ids, metric_id, region, total_text, end, seconds, start = found.groups()
    total = int(total_text)
    # an id or a key holds no quote: each id is two of them, each key ends at the one '":'
    if total > MAX_COUNT or ids.count('"') != 2 * total or date != start[:10]:
        return None
    counts = orjson.loads(counts_text)
    if sum(counts.values()) != total or len(counts) != counts_text.count('":'):
        return None                     # (no count exceeds the total: none is negative)
    try:
        if bound_us(start) >= bound_us(end):
            return None
    except ValueError:
        return None
    return MetricLine(metric_id, date, region, start, end, int(seconds), counts_text, total, ids)
