"""A stage's pure per-line reading, done by the child that reads its input ahead when there is
one (transports.readahead), else here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from evtool.transports.base import Source
from evtool.transports.readahead import ReadAheadSource, read_ahead

T = TypeVar("T")


class Ahead(Generic[T]):
    """`wrap` the source once it is open; then `ahead(lines)` is `work(lines)`, read by the child
    for a batch it read, or here for lines the stage got otherwise (cut, or from a broker)."""

    def __init__(self, work: Callable[[list[bytes]], list[T]]) -> None:
        self.work = work
        self.source: Source | None = None

    def wrap(self, source: Source) -> Source:
        self.source = read_ahead(source, self.work)
        return self.source

    def __call__(self, lines: list[bytes]) -> list[T]:
        source = self.source
        got = source.prepared(lines) if isinstance(source, ReadAheadSource) else None
        if got is None:
            return self.work(lines)
        # the child handed the batch over part done when the stage waited for it
        return got if len(got) == len(lines) else got + self.work(lines[len(got):])
