"""What verification reads from SQLite, read in threads of their own while the stage checks.

Verification needs every stored event's window, region and source: one JSON parse per event,
which in SQLite costs more than replay's whole read. Here SQLite groups a run of windows into one
JSON document while the stage checks the run before, and reads the next batch's traces while it
checks this one: each thread holds the GIL only to hand over a document, so the work overlaps on
two cores and costs no more than the rows did on one.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from evtool.core.instant import iso_us
from evtool.core.roles import ALL_REGIONS, Roles
from evtool.core.windows import placeable
from evtool.store.engine import sqlite3
from evtool.store.sqlite import StoreError, connect_read_only, json_text

CHUNK_EVENTS = 100_000
RUNS_AHEAD = 4                      # documents of about 7 MB, read while metrics load
TRACE_KEYS = 500                    # placeholders a trace query
FIRST_WINDOWS = 64
# [[window start, [event_id, region, source, ...]], ...], region and source as JSON: grouped by
# window alone, whose sort costs a third of one by window and region, and built as text, a third
# of json_group_object's cost. A region or source that is not a string is read as "", as a pack's
# roles read it: a forged number or object must not be a key beside the strings (it once stopped
# verification with a TypeError). LIMIT -1 keeps SQLite from copying `read` into each use of it.
RUN = """SELECT CAST('[' || group_concat(item, ',') || ']' AS BLOB), sum(n) FROM (
    SELECT '[' || w || ',[' || group_concat(json_quote(event_id) || ',' || roles, ',')
           || ']]' AS item, count(*) AS n
    FROM (SELECT w, event_id, {roles} AS roles
          FROM (SELECT ts_us - ((ts_us % :size) + :size) % :size AS w, event_id, {read} AS read
                FROM event_store WHERE ts_us >= :lo AND ts_us < :hi AND typeof(ts_us) = 'integer'
                LIMIT -1))
    GROUP BY w)"""
# the first and last integer instants, each one step down the index: min() and max() beside a
# WHERE clause read the whole index (76 ms a million events)
BOUNDS = ("SELECT (SELECT ts_us FROM event_store WHERE typeof(ts_us) = 'integer' ORDER BY ts_us LIMIT 1), "
          "(SELECT ts_us FROM event_store WHERE typeof(ts_us) = 'integer' ORDER BY ts_us DESC LIMIT 1)")
_STRING = "CASE WHEN substr({0}, 1, 1) = '\"' THEN {0} ELSE '\"\"' END"
# Both roles read by one json_extract (one parse of the event, not two): `["region","source"]`,
# whose inside is what the run wants when it starts with '["' and ends with '"]' (each value is
# then a string); anything else is read role by role.
_BOTH_STRINGS = ("CASE WHEN substr(read, 1, 2) = '[\"' AND substr(read, -2) = '\"]' "
                 "THEN substr(read, 2, length(read) - 2) ELSE {each} END")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# where an event keeps a role: the reference tokens of its pointer, or a constant (no such field)
Role = tuple[str, ...] | str


def readable(roles: Roles) -> tuple[Role, Role] | None:
    """Region and source as this reader reads them, or None where only a parse can (a pointer
    SQLite's path syntax would read differently: an array index, a quoted or escaped key)."""
    found: list[Role] = []
    for role, absent in (("region", ALL_REGIONS), ("source", roles.only_source or "")):
        tokens = roles.tokens(role)
        if tokens is None:
            found.append(absent)
        elif tokens and all(_LABEL.fullmatch(token) for token in tokens):
            found.append(tokens)
        else:
            return None
    return found[0], found[1]


def _run_sql(region: Role, source: Role) -> str:
    """RUN reading each role at its path, or giving the role's constant."""
    paths = ["'$." + ".".join(role) + "'" for role in (region, source) if isinstance(role, tuple)]
    each, at = [], 0
    for name, role in (("region", region), ("source", source)):
        if isinstance(role, str):
            each.append(f"json_quote(:{name})")
            continue
        each.append(_STRING.format(f"(read -> '$[{at}]')" if len(paths) == 2 else "read"))
        at += 1
    roles = " || ',' || ".join(each)
    # json_valid's parse is cached: json_extract does not repeat it
    if len(paths) == 2:
        return RUN.format(read=json_text("raw", f"json_extract(raw, {', '.join(paths)})"),
                          roles=_BOTH_STRINGS.format(each=roles))
    return RUN.format(read=json_text("raw", f"raw -> {paths[0]}") if paths else "NULL", roles=roles)


Window = tuple[str, dict[str, dict[str, str]]]     # start, region -> event_id -> source
# a JSON document a store built: bytes from SQLite (never decoded by the driver), text from
# PostgreSQL
Document = str | bytes
Done = Callable[[int], None]                         # told the events read so far


class Windows:
    """Each window holding stored events, in time order, read from the moment this is made
    (verification starts it before it loads the metrics, while a core is idle)."""

    def __init__(self, path: str, size: int, roles: tuple[Role, Role], done: Done | None = None) -> None:
        self.reader = _Reader(path, size, roles)
        self.reader.start()
        self.done = done

    def __iter__(self) -> Iterator[Window]:
        read = 0
        try:
            while (got := self.reader.runs.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                document, count = got
                for start, flat in sorted(loads_document(document)):
                    regions: dict[str, dict[str, str]] = {}
                    at = iter(flat)
                    for event_id, region, source in zip(at, at, at, strict=True):
                        regions.setdefault(region, {})[event_id] = source
                    yield iso_us(start), regions
                read += count
                if self.done is not None:
                    self.done(read)
        finally:
            self.close()

    def close(self) -> None:
        self.reader.stop()


class _Reader(threading.Thread):
    """Runs of whole windows, each of about CHUNK_EVENTS events, as JSON documents."""

    def __init__(self, path: str, size: int, roles: tuple[Role, Role]) -> None:
        super().__init__(daemon=True, name="evtool-windows")
        self.path, self.size, self.sql = path, size, _run_sql(*roles)
        self.constants = {name: role for name, role in zip(("region", "source"), roles, strict=True)
                          if isinstance(role, str)}
        self.runs: queue.Queue[tuple[bytes, int] | BaseException | None] = queue.Queue(maxsize=RUNS_AHEAD)
        self.stopping = threading.Event()
        self.conn: sqlite3.Connection | None = None

    def run(self) -> None:
        try:
            self.conn = connect_read_only(self.path)
            try:
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
        first, last = conn.execute(BOUNDS).fetchone()
        low, end = placeable(self.size)         # an event outside is in no window a metric has
        if first is None or first >= end or last < low:
            return
        first, last = max(first, low), min(last, end - 1)
        size, lo, per_run = self.size, first - first % self.size, FIRST_WINDOWS
        while lo <= last and not self.stopping.is_set():
            hi = lo + per_run * size
            hi = hi if hi <= last else last + 1       # the last run: no later event to split from
            document, count = conn.execute(self.sql, {"size": size, "lo": lo, "hi": hi,
                                                      **self.constants}).fetchone()
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


class TraceReader:
    """Traced event ids of metrics (by `seq`), each batch read on a connection of its own."""

    def __init__(self, path: str, sql: str, span_sql: str) -> None:
        """`sql` reads the traces of some seqs, `span_sql` those of a range of them."""
        self.path, self.sql, self.span_sql = path, sql, span_sql
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="evtool-traces")
        self.conn: sqlite3.Connection | None = None

    def __call__(self, keys: list[str]) -> Callable[[], dict[str, list[str]]]:
        asked = self.pool.submit(self._read, keys)
        return lambda: traced(asked.result())     # parsed here: the reader holds no GIL for it

    def _read(self, keys: list[str]) -> list[Document]:
        try:
            if self.conn is None:
                self.conn = connect_read_only(self.path, check_same_thread=False)
            span = seq_span(keys)
            if span is not None:
                return [document for (document,) in self.conn.execute(self.span_sql, span) if document]
            return trace_documents(self.conn.execute, self.sql, keys)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        if self.conn is not None:
            self.conn.close()


def seq_span(keys: list[str]) -> tuple[int, int] | None:
    """The first and last of `keys` (seqs), where the range holds few others: the metrics of a
    run of windows were mostly stored one after another, and one read of the range costs two
    thirds of a lookup per seq (the others' traces come too, and are never asked for)."""
    try:
        seqs = [int(key) for key in keys]
    except ValueError:
        return None
    if not seqs:
        return None
    first, last = min(seqs), max(seqs)
    return (first, last) if last - first < 2 * len(seqs) else None


def trace_documents(query: Callable[[str, list[str]], Iterable[tuple[Document | None]]], sql: str,
                    keys: list[str]) -> list[Document]:
    """The store's trace query (`Store.trace_by`) for `keys`, TRACE_KEYS at a time: its JSON
    documents, unparsed."""
    documents: list[Document] = []
    for at in range(0, len(keys), TRACE_KEYS):
        chunk = keys[at:at + TRACE_KEYS]
        for (document,) in query(sql.replace("{marks}", ", ".join("?" for _ in chunk)), chunk):
            if document:
                documents.append(document)
    return documents


def traced(documents: list[Document]) -> dict[str, list[str]]:
    """Each traced metric's key -> its traced event ids, from trace_documents'."""
    found: dict[str, list[str]] = {}
    for document in documents:
        found.update(loads_document(document))
    return found


def loads_document(document: Document) -> Any:
    """A document SQLite built from stored text that is no UTF-8 (an id edited by hand) is read
    with U+FFFD in its place: an id that then matches nothing, a difference to name."""
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError:
        if isinstance(document, str):
            raise
        return orjson.loads(document.decode("utf-8", "replace"))
