"""The terminal dashboard as a pure function of a snapshot and a screen size: the live loop only
writes what this returns. What matters most comes first (totals, rate, dead letters, watermark,
alerts); regions, largest first, take the rows that are left."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.bar import Bar
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from evtool.core.printable import printable_tree

SPARK = "▁▂▃▄▅▆▇█"
HEAD_ROWS = 4          # title, events and rate, dead letters, watermark
ALERTS_WIDE = 52       # an alert row: time, region, source, count vs baseline (z)
BAR_MIN, BAR_MAX = 8, 40


def short(source: str, sources: set[str]) -> str:
    """`security.incident` -> `security`, when no other source shown starts the same way (a
    rule, so no pack's vocabulary is written here)."""
    head = source.split(".", 1)[0]
    return head if sum(1 for s in sources if s.split(".", 1)[0] == head) <= 1 else source


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))] for v in values)


def line(*parts: tuple[str, str]) -> Text:
    """One screen row from (text, style) parts; data is never markup, and a row never wraps."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, style in parts:
        text.append(part, style)
    return text


def head(snap: dict[str, Any], width: int) -> list[Text]:
    rates = [p["rate"] for p in snap["series"]]
    dead = snap["deadletters"]
    reasons = ", ".join(f"{r} {n:,}" for r, n in dead["by_reason"].items()) or "none"
    extra = [f"{snap[k]:,} {word}" for k, word in (("repeated", "repeats ignored"),
             ("unreadable", "unreadable"), ("rejected", "rejected")) if snap.get(k)]
    title = line(("evtool watch", "bold reverse"), (f"  {snap['records']:,} records", "bold"),
                 (f" ({snap['windows']:,} windows, {snap['metrics']:,} metrics"
                  + "".join(f", {e}" for e in extra) + ")", ""),
                 (f"  reading {snap['source'] or '-'}", "dim"))
    now = f"{rates[-1]:,.1f}/s" if rates else "-/s"
    rate = f"events {snap['totals']['total']:,}   {now}  "
    events = line(("events ", "dim"), (f"{snap['totals']['total']:,}", "bold"), ("   rate ", "dim"),
                  (now, "bold"), ("  ", ""),
                  (sparkline(rates[-max(0, width - len(rate) - 8):]), "cyan"))
    dead_row = line(("duplicates ", "dim"), (f"{snap['duplicates']:,}", "bold"),
                    ("   late ", "dim"), (f"{snap['late']:,}", "bold"),
                    ("   dead letters ", "dim"),
                    (f"{dead['total']:,}", "bold red" if dead["total"] else "bold"),
                    (f" ({reasons})", ""))
    mark = snap.get("watermark") or {}
    watermark = line(("watermark ", "dim"), (mark.get("meaning", "-"), ""))
    return [title, events, dead_row, watermark]


def clock_of(instant: Any) -> str:
    """`2026-11-26T10:00:05Z` -> `10:00:05`: the date is on the watermark row."""
    text = str(instant or "")
    return text[11:19] if len(text) >= 20 and text[10] == "T" else text


def number(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, (int, float)) else str(value)


def alert_rows(snap: dict[str, Any], limit: int | None) -> list[Text]:
    latest = snap["alerts"]["latest"]
    shown = latest if limit is None else latest[:max(0, limit)]
    known = set(snap["totals"]["by_source"]) | {str(a.get("source", "")) for a in latest}
    rows = [line(("alerts ", "dim"), (f"{snap['alerts']['total']:,}", "bold yellow" if latest else "bold"),
                 ("  newest first" if shown else "", "dim"))]
    for a in shown:
        rows.append(line((f"  {clock_of(a.get('window_start'))} ", "dim"),
                         (f"{a.get('region', '')} ", "bold"),
                         (f"{short(str(a.get('source', '')), known)} ", ""),
                         (f"{a.get('count')} vs {number(a.get('baseline'))} (z {number(a.get('score'))})",
                          "yellow")))
    return rows


def region_columns(snap: dict[str, Any]) -> tuple[list[str], list[int]]:
    """Headings and widths of the region table's number columns (its bar takes what is left)."""
    totals = snap["totals"]["by_region_source"]
    latest = (snap["latest_window"] or {}).get("by_region_source", {})
    sources = sorted({s for by in totals.values() for s in by})
    heads = ["region", *(short(s, set(sources)) for s in sources), "latest", "total"]
    widths = [max(len(h), 6) for h in heads]
    for region in totals:
        values = [region, *(f"{totals[region].get(s, 0):,}" for s in sources),
                  f"{sum(latest.get(region, {}).values()):,}", f"{sum(totals[region].values()):,}"]
        widths = [max(w, len(v)) for w, v in zip(widths, values, strict=True)]
    return heads, widths


def table_width(widths: list[int]) -> int:
    """Columns, one space of padding each side between them, and a divider between each pair."""
    return sum(widths) + 3 * (len(widths) - 1)


def region_table(snap: dict[str, Any], limit: int | None, width: int) -> Table:
    """Regions largest first: each source's total, the latest window's count, the total, and a
    bar to one scale (the largest total) in whatever width is left."""
    totals = snap["totals"]["by_region_source"]
    latest = (snap["latest_window"] or {}).get("by_region_source", {})
    sources = sorted({s for by in totals.values() for s in by})
    ranked = sorted(totals, key=lambda r: (-sum(totals[r].values()), r))
    shown = ranked if limit is None else ranked[:max(0, limit)]
    top = max((sum(totals[r].values()) for r in ranked), default=0) or 1
    heads, widths = region_columns(snap)
    bar = min(BAR_MAX, width - table_width(widths) - 3)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    for i, (name, w) in enumerate(zip(heads, widths, strict=True)):
        table.add_column(Text(name), justify="left" if i == 0 else "right", no_wrap=True, min_width=w,
                         style="cyan" if name == "latest" and i == len(heads) - 2 else
                         "bold" if i == len(heads) - 1 else None)
    if bar >= BAR_MIN:
        table.add_column("", no_wrap=True, width=bar)
    for region in shown:
        total = sum(totals[region].values())
        cells: list[RenderableType] = [
            Text(region), *(Text(f"{totals[region].get(s, 0):,}") for s in sources),
            Text(f"{sum(latest.get(region, {}).values()):,}"), Text(f"{total:,}")]
        if bar >= BAR_MIN:
            cells.append(Bar(top, 0, total, width=bar, color="green"))
        table.add_row(*cells)
    return table


def render(snap: dict[str, Any], width: int = 100, height: int | None = None,
           hint: str = "") -> RenderableType:
    """The whole screen in `width` x `height` (no height: everything, as for a printed summary)."""
    snap = printable_tree(snap)
    rows = head(snap, width)
    regions = len(snap["totals"]["by_region_source"])
    alerts = snap["alerts"]["latest"]
    footer_rows = 1
    left = None if height is None else height - len(rows) - footer_rows
    # alerts sit beside the regions only where the regions keep a bar of their own
    beside_from = table_width(region_columns(snap)[1]) + 3 + BAR_MIN + 3 + ALERTS_WIDE
    if width >= beside_from:
        region_limit = None if left is None else max(0, left - 2)
        shown_regions = regions if region_limit is None else min(regions, region_limit)
        alert_limit = None if left is None else max(0, left - 1)
        table = region_table(snap, region_limit, width - 3 - ALERTS_WIDE)
        grid = Table.grid(padding=(0, 3))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_row(table, Group(*alert_rows(snap, alert_limit)))
        body: list[RenderableType] = [grid]
    else:
        alert_limit = None if left is None else min(len(alerts), max(2, left // 5))
        block = alert_rows(snap, alert_limit)
        region_limit = None if left is None else max(0, left - len(block) - 2)
        shown_regions = regions if region_limit is None else min(regions, region_limit)
        body = [*block, region_table(snap, region_limit, width)]
    more = f"{shown_regions} of {regions} regions, largest first" if shown_regions < regions else \
        f"{regions} regions, largest first"
    footer = line((more, "dim"), (f" · {hint}" if hint else "", "dim"))
    return Group(*rows, *body, footer)
