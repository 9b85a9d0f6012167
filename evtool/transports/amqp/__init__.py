"""RabbitMQ behind the Source/Sink seam."""

from __future__ import annotations

from evtool.transports.amqp.ends import AmqpSink, AmqpSource
from evtool.transports.amqp.topology import resolve
from evtool.transports.base import Sink, Source
from evtool.transports.endpoint import Endpoint, Side


def open_amqp_source(end: Endpoint, max_line_bytes: int) -> Source:
    target = resolve(end.spec, end.amqp_url, end.stage, Side.IN, end.partitions, end.partition,
                     end.wire)
    return AmqpSource(target, end.stage, end.prefetch, end.connect_timeout, end.wire.binary,
                      end.upstream_grace)


def open_amqp_sink(end: Endpoint) -> Sink:
    target = resolve(end.spec, end.amqp_url, end.stage, end.role, end.partitions, end.partition,
                     end.wire)
    return AmqpSink(target, end.stage, end.connect_timeout, end.roles, end.raw_body, end.wire)
