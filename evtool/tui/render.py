"""The dashboard as a pure function of a snapshot: the live loop only swaps what this returns."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"
SHORT = {"security.incident": "security", "survey.victimization": "survey", "migration.case": "migration"}


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))] for v in values)


def region_table(snap: dict[str, Any]) -> Table:
    """Regions x sources: counts of the latest window and, beside them, the totals."""
    totals = snap["totals"]["by_region_source"]
    latest = (snap["latest_window"] or {}).get("by_region_source", {})
    sources = sorted({s for by in totals.values() for s in by})
    title = "events by region and source"
    if snap["latest_window"]:
        title += f" — latest window {snap['latest_window']['window_start']}"
    table = Table(title=Text(title), expand=False, title_justify="left")
    table.add_column("region")
    for source in sources:
        table.add_column(Text(SHORT.get(source, source)), justify="right")
    table.add_column("total", justify="right", style="bold")
    for region in sorted(totals):
        cells = [Text(f"{latest.get(region, {}).get(s, 0)}/{totals[region].get(s, 0)}") for s in sources]
        table.add_row(Text(region), *cells, Text(str(sum(totals[region].values()))))
    table.caption = "latest window / all windows"
    return table


def side_table(snap: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    rates = [p["rate"] for p in snap["events_per_s"]]
    lag = snap["watermark_lag_s"]
    dead = snap["deadletters"]
    reasons = ", ".join(f"{r} {n}" for r, n in dead["by_reason"].items()) or "none"
    for label, value in (
        ("reading", snap["source"] or "-"),
        ("records", f"{snap['records']:,} ({snap['windows']:,} windows, {snap['metrics']:,} metrics"
                    + (f", {snap['repeated']:,} repeats ignored)" if snap.get("repeated") else ")")),
        ("events counted", f"{snap['totals']['total']:,}"),
        ("events/s", f"{rates[-1]:,.1f}  {sparkline(rates)}" if rates else "-"),
        ("dead letters", f"{dead['total']:,} ({reasons})"),
        ("duplicates", f"{snap['duplicates']:,}"),
        ("late", f"{snap['late']:,}"),
        ("watermark lag", "-" if lag is None else f"{lag:,.1f} s"),
    ):
        table.add_row(label, Text(value))            # data is never markup
    return table


def alerts_table(snap: dict[str, Any]) -> RenderableType:
    alerts = snap["alerts"]["latest"]
    if not alerts:
        return Text(f"alerts: {snap['alerts']['total']}", style="dim")
    table = Table(title=f"alerts ({snap['alerts']['total']})", title_justify="left")
    for column in ("window", "region", "source", "count", "baseline", "score"):
        table.add_column(column, justify="right" if column in ("count", "baseline", "score") else "left")
    for a in alerts[:5]:
        cells = (a.get("window_start", ""), a.get("region", ""),
                 SHORT.get(a.get("source"), a.get("source", "")), a.get("count"), a.get("baseline"),
                 a.get("score"))
        table.add_row(*(Text(str(c)) for c in cells))
    return table


def render(snap: dict[str, Any]) -> RenderableType:
    """The whole screen."""
    return Group(
        Panel(side_table(snap), title="evtool watch", title_align="left"),
        region_table(snap),
        alerts_table(snap),
    )
