"""The half of aggregate's per-line work that needs no state: an event laid out as the pack's
expression is read without parsing, and its instant and dedupe key are computed. Being a pure
function of the lines, it may run in another process while the stage counts the lines before."""

from __future__ import annotations

from collections.abc import Callable

from evtool.core.dedupe import Key, compact_id
from evtool.core.instant import shaped_us
from evtool.core.linereader import LineReader

# event_id, region, source, instant (µs), dedupe key; None: a line the stage must read itself
Fields = tuple[str, str, str, int, Key]
# how aggregate has `LineFields` run: here, or by the child reading ahead
ReadFields = Callable[[list[bytes]], list[Fields | None]]


class LineFields:
    """Reads lines with the pack's whole-line expression (linereader.field_reader)."""

    def __init__(self, reader: LineReader) -> None:
        self.reader = reader
        self.uuid_ids = reader.uuid_ids
        self.groups = reader.groups

    def __call__(self, lines: list[bytes]) -> list[Fields | None]:
        read, groups, uuid_ids = self.reader.pattern.fullmatch, self.groups, self.uuid_ids
        time_of = shaped_us if self.reader.exact_time else self.reader.time_of
        # one object per region and source: cheaper to key and to send; a role the events do
        # not carry matches empty and stands for its constant
        regions, sources = (dict([pair]) if pair else {} for pair in self.reader.names)
        got: list[Fields | None] = []
        for line in lines:
            found = read(line.decode("utf-8", "replace"))
            if found is None:
                got.append(None)
                continue
            event_id, ts, region, source = found.group(*groups)
            at = time_of(ts)
            if at is None:                  # the time rule's slow cases: the stage reads the line
                got.append(None)
                continue
            if uuid_ids:                # compact_id and fold_id, the shape known
                low = event_id.lower()
                if low != event_id:
                    event_id = low
                key: Key = int(low.replace("-", ""), 16)
            else:
                key = compact_id(event_id)
            got.append((event_id, regions.setdefault(region, region), sources.setdefault(source, source),
                        at, key))
        return got
