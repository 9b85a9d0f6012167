"""The Source and Sink of the seam on RabbitMQ: one message per record."""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple, cast

import orjson
import pika

from evtool.console import speaker
from evtool.core.records import parse, raw_body
from evtool.core.roles import RoleError, Roles
from evtool.core.wire import SHORTSTR, Binary, Wire
from evtool.transports.amqp.link import Delivery, Link
from evtool.transports.amqp.outbox import Outgoing
from evtool.transports.amqp.topology import AmqpTarget
from evtool.transports.backoff import UPSTREAM_GRACE
from evtool.transports.base import Batch, Sink, Source

BATCH = 2000
IDLE_POLL = 1.0
ID_FIELD = {"metric": "metric_id", "alert": "alert_id"}


# After a signal or at close, how long unconfirmed messages may still hold a stage up.
LAST_WAIT = 5.0



class AmqpSource(Source):
    """Consumes with manual acks; a token acks its whole batch (multiple=True).

    After a reconnect the broker delivers again every message not acked, but what this process
    has already read is in its state and its output is on the way: those messages are skipped,
    so a stage's answer is a function of its input, not of when the connection dropped."""

    redelivers = True

    def __init__(self, target: AmqpTarget, stage: str, prefetch: int, connect_timeout: float,
                 binary: Binary | None = None, upstream_grace: bool = False) -> None:
        """`upstream_grace`: a quiet read (`read(timeout)` giving no lines) waits, after a
        reconnect, until the stages upstream have had time to come back too."""
        self.description = target.shown
        self._log = speaker(stage)
        self.link = Link(target, consume=True, prefetch=prefetch, connect_timeout=connect_timeout,
                         log=self._log, binary=binary,
                         grace=UPSTREAM_GRACE if upstream_grace else 0.0)
        # (generation, last tag, lines, each line's tag) of what is read and not acked
        self._read: deque[tuple[int, int, list[bytes], list[int]]] = deque()
        self._just_acked: tuple[int, list[bytes]] = (0, [])
        self._again: Counter[bytes] = Counter()
        self._generation = 0
        self._skipped = 0
        self.link.start()

    def reconnects(self) -> int:
        return self.link.reconnects

    def read(self, timeout: float | None = None) -> Batch | None:
        while True:
            got = self.link.take(BATCH, timeout if timeout is not None else IDLE_POLL)
            if got or timeout is not None:
                break
        if not got:
            return Batch([])
        last = got[-1]
        if last.generation != self._generation:
            self._reconnected(last.generation)
        lines = [one_line(d.body) for d in got]
        self._read.append((last.generation, last.tag, lines, [d.tag for d in got]))
        if self._again:
            lines = self._unseen(got, lines)
        return Batch(lines, (last.generation, last.tag))

    def _reconnected(self, generation: int) -> None:
        """Everything read on the connection before and not acked comes again (and the batches
        acked last, whose ack may have been lost with the connection)."""
        previous = self._generation
        for read_on, _tag, lines, _tags in self._read:
            if read_on == previous:
                self._again.update(lines)
        if self._just_acked[0] == previous:
            self._again.update(self._just_acked[1])
        self._generation = generation
        self._skipped = 0

    def _unseen(self, got: list[Delivery], lines: list[bytes]) -> list[bytes]:
        """`lines` less the redeliveries of what was read before. The broker puts them back at
        the head of the queue: the first message delivered for the first time ends them."""
        again = self._again
        kept: list[bytes] = []
        for at, (delivery, line) in enumerate(zip(got, lines, strict=True)):
            if not delivery.redelivered:
                again.clear()
            left = again.get(line, 0)
            if left:
                if left == 1:
                    del again[line]
                else:
                    again[line] = left - 1
                self._skipped += 1
            else:
                kept.append(line)
            if not again:
                if self._skipped:
                    self._log(f"after a reconnect, {self._skipped} message(s) delivered again had "
                              "been handled here already: skipped")
                return kept + lines[at + 1:]
        return kept

    def ack(self, token: object) -> None:
        if token is None:
            return
        generation, tag = cast(tuple[int, int], token)
        done: list[bytes] = []
        read = self._read
        while read and (read[0][0], read[0][1]) <= (generation, tag):
            done += read.popleft()[2]
        self._just_acked = (generation, done)
        self.link.ack(generation, tag)

    def ack_all_but(self, keep: Callable[[list[bytes]], Collection[bytes]], upto: object) -> None:
        generation, last = cast(tuple[int, int], upto)
        unacked = [(line, tag) for read_on, up_to, lines, tags in self._read
                   if read_on == generation and up_to <= last
                   for line, tag in zip(lines, tags, strict=True)]
        if not unacked:
            return
        kept = Counter(keep([line for line, _tag in unacked]))
        done: list[int] = []
        for line, tag in unacked:
            if kept[line]:
                kept[line] -= 1
            else:
                done.append(tag)
        self._read.clear()
        self.link.ack_each(generation, done)
        if len(done) < len(unacked):
            self._log(f"stopping: {len(unacked) - len(done)} message(s) whose work is not done "
                      "are left for redelivery")

    def close(self) -> None:
        self.link.close()


def one_line(body: bytes) -> bytes:
    """A message is one record: pretty-printed JSON is made compact so that it stays one NDJSON
    line downstream (anything else keeps its bytes and becomes a dead letter there)."""
    if b"\n" not in body and b"\r" not in body:
        return body
    try:
        return orjson.dumps(parse(body))
    except orjson.JSONDecodeError:
        return body


class Route(NamedTuple):
    key: str
    message_id: str
    headers: dict[str, str] | None
    event: bool = True


def record_route(line: bytes, region_header: bool = False, roles: Roles | None = None,
                 routes: Mapping[str, str] | None = None) -> Route:
    """(routing key, message id, headers, whether an event) of a record: events by source (where
    the pack's roles say), derived records by kind (the key the pack's wire routes it by, else
    the kind). Events get a `region` header only where partitioned aggregation hashes on it: a header table on
    every message cost a quarter of validate's throughput on the broker."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Route("unknown", hashlib.sha1(line).hexdigest(), None)
    if type(rec) is not dict:
        return Route("unknown", hashlib.sha1(line).hexdigest(), None)
    if roles is not None and not roles.is_derived(rec):
        return _event_route(rec, region_header, roles)
    kind = rec.get("kind")
    if kind is None:
        headers = {"region": str(rec.get("region", ""))} if region_header else None
        return Route(str(rec.get("source", "unknown")), str(rec.get("event_id", "")), headers)
    message_id = rec.get(ID_FIELD.get(kind, ""))
    if not isinstance(message_id, str):
        message_id = hashlib.sha1(line).hexdigest()
    return Route((routes or {}).get(kind, str(kind)), message_id, None, event=False)


def _event_route(rec: dict[str, Any], region_header: bool, roles: Roles) -> Route:
    def read(role: Callable[[Any], str], default: str) -> str:
        try:
            return role(rec)
        except RoleError:
            return default

    headers = {"region": read(roles.region_of, "")} if region_header else None
    return Route(read(roles.source_of, "unknown"), read(roles.event_id, ""), headers)


class AmqpSink(Sink):
    """Publishes persistent JSON messages with confirms; `flush` waits for every confirm."""

    def __init__(self, target: AmqpTarget, stage: str, connect_timeout: float,
                 roles: Roles | None = None, raw_body: bool = False, wire: Wire | None = None
                 ) -> None:
        """`roles`: where a pack keeps source, id and region (None or evtool's own: read by name).
        `raw_body`: dead letters go out as the rejected bytes, the reason in headers.
        `wire`: the pack's routing keys by kind and its records' content type."""
        self.roles = None if roles is None or roles.is_default else roles
        self.routes = dict(wire.routes) if wire is not None else {}
        self.content_type = wire.content_type if wire is not None else "application/json"  # events
        self.raw_body = raw_body
        self.description = target.shown
        self.topology = target.topology
        self.region_header = bool(target.topology.hash_exchanges)
        self._refused: list[tuple[bytes, str]] = []
        self._said: set[str] = set()
        self._dropped = 0
        self._log = speaker(stage)
        self.link = Link(target, consume=False, prefetch=0, connect_timeout=connect_timeout,
                         log=speaker(stage))
        self.link.start()

    def reconnects(self) -> int:
        return self.link.reconnects

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        exchange = self.topology.exchange or ""
        fixed = self.topology.routing_key
        batch = []
        for line in lines:
            content_type: str | None = "application/json"
            headers: dict[str, str] | None
            if self.raw_body:
                line, headers = raw_body(line)
                key, message_id, content_type = "deadletter.raw", hashlib.sha1(line).hexdigest(), None
            else:
                key, message_id, headers, event = record_route(line, self.region_header, self.roles,
                                                               self.routes)
                if event:
                    content_type = self.content_type
            key = fixed or key
            if len(key.encode()) > SHORTSTR:
                self._refused.append((line, f"its routing key would be {len(key.encode())} bytes "
                                            f"long; AMQP allows {SHORTSTR}"))
                continue
            if not self.topology.mandatory(key) and key not in self._said:
                self._said.add(key)
                self._log(f"routing key {key!r} need not be bound: if no queue is bound to it, the "
                          "broker drops it (counted apart from out)")
            if len(message_id.encode()) > SHORTSTR:
                message_id = hashlib.sha1(message_id.encode()).hexdigest()
            props = pika.BasicProperties(content_type=content_type, delivery_mode=2,
                                         message_id=message_id, headers=headers)
            batch.append(Outgoing(exchange, key, line, props))
        if batch:
            self.link.publish(batch)

    def refused(self) -> list[tuple[bytes, str]]:
        taken, self._refused = self._refused, []
        return taken

    def dropped(self) -> int:
        now = self.link.unroutable
        taken, self._dropped = now - self._dropped, now
        return taken

    def flush(self, within: float | None = None) -> None:
        self.link.wait_confirmed(within)

    def close(self) -> None:
        try:
            self.flush(LAST_WAIT)
        finally:
            self.link.close()
