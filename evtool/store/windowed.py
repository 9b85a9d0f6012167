"""The stored events of each window, by region, read by SQLite in a thread of its own.

Verification needs every stored event's window, region and source: one JSON parse per event,
which in SQLite costs more than replay's whole read. Here SQLite groups a run of windows into one
JSON document while the stage checks the run before: the thread holds the GIL only to hand over a
document (about CHUNK_EVENTS events), so the two overlap on two cores and cost no more than the
rows did on one.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator

import orjson

from evtool.core.instant import iso_us
from evtool.store.sqlite import CACHE_KIB, MMAP_BYTES, StoreError, connect_read_only

CHUNK_EVENTS = 100_000
FIRST_WINDOWS = 64
# A value that is not a string is read as "", as a pack's roles read it: a forged number or
# object must not be a key beside the strings (it once stopped verification with a TypeError).
_TEXT = "CASE json_type(raw, '$.{0}') WHEN 'text' THEN raw -> '$.{0}' ELSE '\"\"' END"
# [[window start, [region, event_id, source, ...]], ...]: grouped by window alone, whose sort
# costs a third of one by window and region, and built as text, a third of json_group_object's
RUN = f"""SELECT '[' || group_concat(item, ',') || ']', sum(n) FROM (
    SELECT '[' || w || ',[' || group_concat(region || ',' || json_quote(event_id) || ',' || source, ',')
           || ']]' AS item, count(*) AS n
    FROM (SELECT ts_us - ((ts_us % :size) + :size) % :size AS w, event_id,
                 {_TEXT.format("region")} AS region, {_TEXT.format("source")} AS source
          FROM event_store WHERE ts_us >= :lo AND ts_us < :hi AND typeof(ts_us) = 'integer')
    GROUP BY w)"""
Window = tuple[str, dict[str, dict[str, str]]]     # start, region -> event_id -> source
Done = Callable[[int], None]                         # told the events read so far


def windows(path: str, size: int, done: Done | None = None) -> Iterator[Window]:
    """Each window holding stored events, in time order."""
    reader = _Reader(path, size)
    reader.start()
    read = 0
    try:
        while (got := reader.runs.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            document, count = got
            for start, flat in sorted(orjson.loads(document)):
                regions: dict[str, dict[str, str]] = {}
                at = iter(flat)
                for region, event_id, source in zip(at, at, at, strict=True):
                    regions.setdefault(region, {})[event_id] = source
                yield iso_us(start), regions
            read += count
            if done is not None:
                done(read)
    finally:
        reader.stop()


class _Reader(threading.Thread):
    """Runs of whole windows, each of about CHUNK_EVENTS events, as JSON documents."""

    def __init__(self, path: str, size: int) -> None:
        super().__init__(daemon=True, name="evtool-windows")
        self.path, self.size = path, size
        self.runs: queue.Queue[tuple[str, int] | BaseException | None] = queue.Queue(maxsize=2)
        self.stopping = threading.Event()
        self.conn: sqlite3.Connection | None = None

    def run(self) -> None:
        try:
            self.conn = connect_read_only(self.path)
            try:
                self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")   # the grouping sorts in memory
                self.conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
                self._read(self.conn)
            finally:
                self.conn.close()
            self.runs.put(None)
        except sqlite3.Error as exc:
            self.runs.put(StoreError(f"cannot read {self.path}: {exc}"))
        except BaseException as exc:             # handed to the stage, which raises it
            self.runs.put(exc)

    def _read(self, conn: sqlite3.Connection) -> None:
        """The span of a run follows the density of the last one, in whole windows."""
        first, last = conn.execute("SELECT min(ts_us), max(ts_us) FROM event_store "
                                   "WHERE typeof(ts_us) = 'integer'").fetchone()
        if first is None:
            return
        size, lo, per_run = self.size, first - first % self.size, FIRST_WINDOWS
        while lo <= last and not self.stopping.is_set():
            hi = lo + per_run * size
            hi = hi if hi <= last else last + 1       # the last run: no later event to split from
            document, count = conn.execute(RUN, {"size": size, "lo": lo, "hi": hi}).fetchone()
            if count:
                self.runs.put((document, int(count)))
            lo = hi
            per_run = max(1, min(per_run * 8, per_run * CHUNK_EVENTS // max(int(count or 0), 1)))

    def stop(self) -> None:
        """Stopped mid-query (the stage was interrupted or failed), the reader's last word unread."""
        self.stopping.set()
        while self.is_alive():
            if self.conn is not None:
                with contextlib.suppress(sqlite3.ProgrammingError):    # closed meanwhile
                    self.conn.interrupt()
            try:
                self.runs.get_nowait()            # a reader blocked on a full queue sees `stopping`
            except queue.Empty:
                self.join(0.05)
