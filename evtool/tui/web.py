"""The page of `watch --serve`: a static shell and a script that draws /data (the same snapshot the
terminal view renders) as SVG charts in the browser; shipped as package data, nothing fetched."""

from __future__ import annotations

from functools import cache
from importlib import resources

ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}


@cache
def _read(name: str) -> bytes:
    return resources.files("evtool.tui").joinpath("static").joinpath(name).read_bytes()


def asset(path: str) -> tuple[str, bytes] | None:
    """(content type, body) of one of the page's files, or None when `path` is not one."""
    found = ASSETS.get(path)
    return None if found is None else (found[1], _read(found[0]))
