"""The dashboard as a self-contained HTML page (no external assets) that reloads itself."""

from __future__ import annotations

from html import escape
from typing import Any

SOURCES_SHORT = {"security.incident": "security", "survey.victimization": "survey",
                 "migration.case": "migration"}


def esc(value: Any) -> str:
    """Data is text on the page, never markup."""
    return escape(str(value))


def page(snap: dict[str, Any], refresh_s: int = 2) -> str:
    totals = snap["totals"]["by_region_source"]
    sources = sorted({s for by in totals.values() for s in by})
    head = "".join(f"<th>{escape(SOURCES_SHORT.get(s, s))}</th>" for s in sources)
    rows = "".join(
        f"<tr><td>{escape(region)}</td>"
        + "".join(f"<td>{esc(totals[region].get(s, 0))}</td>" for s in sources)
        + f"<td><b>{esc(sum(totals[region].values()))}</b></td></tr>"
        for region in sorted(totals))
    dead = ", ".join(f"{esc(r)} {esc(n)}" for r, n in snap["deadletters"]["by_reason"].items()) or "none"
    alerts = "".join(
        f"<li>{esc(a.get('window_start'))} {esc(a.get('region'))} "
        f"{esc(a.get('source'))}: {esc(a.get('count'))} (baseline {esc(a.get('baseline'))})</li>"
        for a in snap["alerts"]["latest"])
    lag = snap["watermark_lag_s"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh_s}">
<title>evtool watch</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body>
<h1>evtool watch</h1>
<p>reading {escape(snap['source'] or '-')} &middot; {snap['records']} records &middot;
{snap['windows']} windows &middot; {snap['totals']['total']} events counted &middot;
dead letters {snap['deadletters']['total']} ({dead}) &middot; duplicates {snap['duplicates']}
&middot; watermark lag {'-' if lag is None else f'{lag:.1f} s'}</p>
<table id="regions"><caption>events by region and source</caption>
<tr><th>region</th>{head}<th>total</th></tr>{rows}</table>
<h2>alerts ({snap['alerts']['total']})</h2><ul>{alerts}</ul>
<p><a href="/data">/data</a> &middot; <a href="/metrics">/metrics</a></p>
</body></html>
"""
