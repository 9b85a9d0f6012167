"""The Source and Sink of the seam on RabbitMQ: one message per record."""

from __future__ import annotations

import hashlib
import sys
from typing import Any, cast

import orjson
import pika

from evtool.core.records import parse
from evtool.transports.amqp.link import Link, Outgoing
from evtool.transports.amqp.spec import AmqpTarget, redact
from evtool.transports.base import Batch, Sink, Source

BATCH = 2000
IDLE_POLL = 1.0
ROUTING_BY_KIND = {"window": "analytics.window", "metric": "metrics.daily", "alert": "alerts.anomaly"}
ID_FIELD = {"metric": "metric_id", "alert": "alert_id"}


def stderr_logger(stage: str) -> Any:
    def log(message: str) -> None:
        try:
            sys.stderr.write(f"evtool {stage}: {redact(message)}\n")
            sys.stderr.flush()
        except OSError:
            pass

    return log


# AMQP short strings (routing keys, message ids) hold at most 255 bytes.
SHORTSTR = 255
# After a signal or at close, how long unconfirmed messages may still hold a stage up.
LAST_WAIT = 5.0


class AmqpSource(Source):
    """Consumes with manual acks; a token acks its whole batch (multiple=True)."""

    redelivers = True

    def __init__(self, target: AmqpTarget, stage: str, prefetch: int, connect_timeout: float) -> None:
        self.description = target.shown
        self.link = Link(target, consume=True, prefetch=prefetch, connect_timeout=connect_timeout,
                         log=stderr_logger(stage))
        self.link.start()

    def read(self, timeout: float | None = None) -> Batch | None:
        while True:
            got = self.link.take(BATCH, timeout if timeout is not None else IDLE_POLL)
            if got or timeout is not None:
                break
        if not got:
            return Batch([])
        last = got[-1]
        return Batch([one_line(d.body) for d in got], (last.generation, last.tag))

    def ack(self, token: object) -> None:
        if token is not None:
            generation, tag = cast(tuple[int, int], token)
            self.link.ack(generation, tag)

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


def record_route(line: bytes, region_header: bool = False) -> tuple[str, str, dict[str, str] | None]:
    """(routing key, message id, headers) of a record: events by source, derived records by kind.
    Events get a `region` header only where partitioned aggregation hashes on it: a header table
    on every message cost a quarter of validate's throughput on the broker."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "unknown", hashlib.sha1(line).hexdigest(), None
    if type(rec) is not dict:
        return "unknown", hashlib.sha1(line).hexdigest(), None
    kind = rec.get("kind")
    if kind is None:
        headers = {"region": str(rec.get("region", ""))} if region_header else None
        return str(rec.get("source", "unknown")), str(rec.get("event_id", "")), headers
    message_id = rec.get(ID_FIELD.get(kind, ""))
    if not isinstance(message_id, str):
        message_id = hashlib.sha1(line).hexdigest()
    return ROUTING_BY_KIND.get(kind, str(kind)), message_id, None


class AmqpSink(Sink):
    """Publishes persistent JSON messages with confirms; `flush` waits for every confirm."""

    def __init__(self, target: AmqpTarget, stage: str, connect_timeout: float) -> None:
        self.description = target.shown
        self.topology = target.topology
        self.region_header = bool(target.topology.hash_exchanges)
        self._refused: list[tuple[bytes, str]] = []
        self._said: set[str] = set()
        self._log = stderr_logger(stage)
        self.link = Link(target, consume=False, prefetch=0, connect_timeout=connect_timeout,
                         log=stderr_logger(stage))
        self.link.start()

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        exchange = self.topology.exchange or ""
        fixed = self.topology.routing_key
        batch = []
        for line in lines:
            key, message_id, headers = record_route(line, self.region_header)
            key = fixed or key
            if len(key.encode()) > SHORTSTR:
                self._refused.append((line, f"its routing key would be {len(key.encode())} bytes "
                                            f"long; AMQP allows {SHORTSTR}"))
                continue
            if not self.topology.mandatory(key) and key not in self._said:
                self._said.add(key)
                self._log(f"routing key {key!r} is published without 'mandatory': if no queue is "
                          "bound to it, the broker drops it")
            if len(message_id.encode()) > SHORTSTR:
                message_id = hashlib.sha1(message_id.encode()).hexdigest()
            props = pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                         message_id=message_id, headers=headers)
            batch.append(Outgoing(exchange, key, line, props))
        if batch:
            self.link.publish(batch)

    def refused(self) -> list[tuple[bytes, str]]:
        taken, self._refused = self._refused, []
        return taken

    def flush(self, within: float | None = None) -> None:
        self.link.wait_confirmed(within)

    def close(self) -> None:
        try:
            self.flush(LAST_WAIT)
        finally:
            self.link.close()
