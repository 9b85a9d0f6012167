"""RabbitMQ side of the seam (issue 4): until it lands, 'amqp' specs are a clear error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evtool.transports.base import Sink, Source, TransportError

if TYPE_CHECKING:
    from evtool.transports.spec import Endpoint


def open_amqp_source(end: Endpoint, max_line_bytes: int) -> Source:
    raise TransportError("the RabbitMQ transport is not available in this version")


def open_amqp_sink(end: Endpoint) -> Sink:
    raise TransportError("the RabbitMQ transport is not available in this version")
