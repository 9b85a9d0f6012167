"""AMQP specs: URLs (with the password kept out of every message) and the pack's topology."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika

from evtool.core.secrets import redact
from evtool.core.wire import Binding, Topology, Wire, too_long
from evtool.transports.base import TransportError
from evtool.transports.endpoint import Side

__all__ = ["redact"]

OUR_KEYS = ("exchange", "routing_key", "queue", "binding", "exchange_type")


RING_POINTS = "100"     # points per queue on the hash ring: with one each, 16 regions can all land on one


def partitions_exchange(n: int) -> str:
    """One ring per partition count, so a run with another N never shares a hash ring."""
    return f"aggregator_partitions.{n}"


def partition_queue(n: int, k: int) -> str:
    return f"aggregator_queue.{k}-of-{n}"


def partitioned(n: int, wire: Wire) -> Topology:
    """Events of a region always reach the same one of n queues: a consistent-hash exchange on
    the `region` header, fed by validate's output exchange. Every side declares all n queues, so
    the ring is whole before the first message and never changes while events flow."""
    ring = partitions_exchange(n)
    queues = tuple(partition_queue(n, k) for k in range(n))
    feed = (wire.topology("validate", "out") or Topology()).exchange or ""
    return Topology(exchanges=(feed,), hash_exchanges=(ring,),
                    exchange_bindings=((ring, feed),), queues=queues,
                    bindings=tuple(Binding(q, ring, RING_POINTS) for q in queues))


@dataclass(frozen=True)
class AmqpTarget:
    """Where to connect (pika parameters) and what to declare and use there."""

    params: pika.URLParameters = field(compare=False)
    topology: Topology
    shown: str


def names_problem(spec: str) -> str | None:
    """Why the names an amqp:// SPEC gives (exchange=, queue=, ...) can be no AMQP names, or None:
    one too long for AMQP (wire.too_long), or a %-escape that is no UTF-8, which became U+FFFD,
    another name than the one given."""
    try:
        pairs = parse_qsl(urlsplit(spec).query, errors="strict")
    except UnicodeDecodeError:
        return "a name in its query is no UTF-8 once its %-escapes are decoded"
    for key, value in pairs:
        problem = too_long(value) if key in OUR_KEYS else None
        if problem is not None:
            return f"{key}= {problem}"
    return None


def connection_url(spec: str) -> str:
    """The broker and vhost an amqp:// SPEC connects to, without evtool's topology keys."""
    parts = urlsplit(spec)
    rest = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in OUR_KEYS])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))


def resolve(spec: str, amqp_url: str, stage: str, role: Side, partitions: int = 1,
            partition: int = 0, wire: Wire | None = None) -> AmqpTarget:
    """`amqp` means the stage's default topology (the pack's wire.json) at --amqp-url; a URL
    names its own."""
    if spec == "amqp":
        wire = wire or Wire({}, Topology())
        topology = wire.topology(stage, role)
        if partitions > 1 and (stage, role) == ("validate", "out"):
            aggregate = wire.topology("aggregate", "in")
            topology = wire.partitioned_validate_out(partitioned(partitions, wire),
                                                     aggregate.queue if aggregate else None)
        elif partitions > 1 and (stage, role) == ("aggregate", "in"):
            topology = replace(partitioned(partitions, wire),
                               queue=partition_queue(partitions, partition))
        if topology is None:
            raise TransportError(f"{stage} has no default broker {'input' if role == 'in' else 'output'};"
                                 " give an amqp:// URL with exchange= or queue=")
        return AmqpTarget(_params(amqp_url), topology, redact(amqp_url))
    ours = {k: v for k, v in parse_qsl(urlsplit(spec).query) if k in OUR_KEYS}
    url = connection_url(spec)
    if role == "in":
        queue = ours.get("queue")
        exchange = ours.get("exchange")
        if queue is None and exchange is None:
            raise TransportError(f"{redact(spec)}: an input URL needs queue= or exchange=")
        queue = queue or ""
        bindings = (Binding(queue, exchange, ours.get("binding", "#")),) if exchange else ()
        topology = Topology(exchanges=(exchange,) if exchange else (),
                            queues=(queue,) if queue else (), bindings=bindings, queue=queue,
                            kinds=((exchange, ours["exchange_type"]),)
                            if exchange and "exchange_type" in ours else ())
    else:
        exchange = ours.get("exchange", "")
        key = ours.get("routing_key")
        queue = ours.get("queue")
        if not exchange and not (key or queue):
            raise TransportError(f"{redact(spec)}: an output URL needs exchange=, or queue= "
                                 "(publish straight to it)")
        topology = Topology(exchanges=(exchange,) if exchange else (),
                            queues=(queue,) if queue else (),
                            bindings=(Binding(queue, exchange, ours.get("binding", "#")),)
                            if queue and exchange else (),
                            exchange=exchange, routing_key=key if exchange else (key or queue),
                            kinds=((exchange, ours["exchange_type"]),)
                            if exchange and "exchange_type" in ours else ())
    return AmqpTarget(_params(url), topology, redact(url))


def _params(url: str) -> pika.URLParameters:
    userinfo = url.partition("://")[2].rpartition("@")[0]
    if any(c in userinfo for c in "/?#"):
        # a parser would cut the password there, and may quote the rest in its error
        raise TransportError(f"bad broker URL {redact(url)}: its user or password holds '/', '?' "
                             "or '#': percent-encode them (%2F, %3F, %23)")
    try:
        params = pika.URLParameters(url)
    except Exception as exc:  # pika raises several kinds for a bad URL
        raise TransportError(f"bad broker URL {redact(url)}: {redact(str(exc))}") from None
    if url[:8].lower() == "amqps://":
        context = ssl.create_default_context()          # verifies the certificate and host name
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    params.heartbeat = 30
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.blocked_connection_timeout = 300
    return params
