"""AMQP specs: URLs (with the password kept out of every message) and the contract's topology."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika

from evtool.core.secrets import redact
from evtool.transports.base import TransportError
from evtool.transports.endpoint import Side

__all__ = ["redact"]

OUR_KEYS = ("exchange", "routing_key", "queue", "binding", "exchange_type")
DEAD_LETTER_QUEUE = "deadletter.validation"
EVENTS, PROCESSING, ANALYTICS = "events_exchange", "processing_exchange", "analytics_exchange"


@dataclass(frozen=True)
class Binding:
    queue: str
    exchange: str
    key: str = "#"


@dataclass(frozen=True)
class Topology:
    """What one side of a stage declares and uses. `queue` "" means a private auto-delete queue.
    `exchange` "" with a `routing_key` publishes straight to that queue (default exchange)."""

    exchanges: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    bindings: tuple[Binding, ...] = ()
    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    hash_exchanges: tuple[str, ...] = ()                   # x-consistent-hash on a region header
    exchange_bindings: tuple[tuple[str, str], ...] = ()    # (destination, source), key "#"
    kinds: tuple[tuple[str, str], ...] = ()                # (exchange, type) where not "topic"
    also_consume: tuple[str, ...] = ()                     # more queues consumed on one channel
    optional_keys: tuple[str, ...] = ()                    # routing keys nobody may be bound to yet
    only_mandatory: tuple[str, ...] = ()                   # if set, every other key is optional

    def mandatory(self, key: str) -> bool:
        if self.only_mandatory:
            return key in self.only_mandatory
        return key not in self.optional_keys

    def kind_of(self, exchange: str) -> str:
        return dict(self.kinds).get(exchange, "topic")


def _consume(queue: str, *exchanges: str) -> Topology:
    return Topology(exchanges=exchanges, queues=(queue,) if queue else (),
                    bindings=tuple(Binding(queue, ex) for ex in exchanges), queue=queue)


def _publish(exchange: str, *downstream: tuple[str, str]) -> Topology:
    """Publishing also declares the default consumers' queues, so nothing published before they
    start is unroutable or lost."""
    queues = tuple(q for q, _ in downstream)
    return Topology(exchanges=(exchange,), queues=queues,
                    bindings=tuple(Binding(q, ex) for q, ex in downstream), exchange=exchange)


DEAD_EXCHANGE = "deadletter_exchange"


def _dead(exchange: str) -> Topology:
    """Rejects go to the deadletter.validation queue through a direct exchange, so a watcher can
    bind a queue of its own beside it and see them without taking them from whoever handles them."""
    return Topology(exchanges=(exchange,), kinds=((exchange, "direct"),), queues=(DEAD_LETTER_QUEUE,),
                    bindings=(Binding(DEAD_LETTER_QUEUE, exchange, DEAD_LETTER_QUEUE),),
                    exchange=exchange, routing_key=DEAD_LETTER_QUEUE)


def _watching(dead_exchange: str) -> Topology:
    """A private auto-delete queue on the analytics exchange and on the dead-letter exchange."""
    return Topology(exchanges=(ANALYTICS, dead_exchange), kinds=((dead_exchange, "direct"),),
                    bindings=(Binding("", ANALYTICS), Binding("", dead_exchange, DEAD_LETTER_QUEUE)),
                    queue="")


DEAD = _dead(DEAD_EXCHANGE)
DEFAULTS: dict[tuple[str, str], Topology] = {
    ("gen", "out"): _publish(EVENTS, ("validator_queue", EVENTS)),
    ("replay", "out"): _publish(EVENTS, ("validator_queue", EVENTS)),
    ("validate", "in"): _consume("validator_queue", EVENTS),
    ("validate", "out"): _publish(PROCESSING, ("aggregator_queue", PROCESSING),
                                  ("audit_queue", PROCESSING)),
    ("aggregate", "in"): _consume("aggregator_queue", PROCESSING),
    ("aggregate", "out"): _publish(ANALYTICS, ("audit_queue", ANALYTICS)),
    ("audit", "in"): _consume("audit_queue", PROCESSING, ANALYTICS),
    ("watch", "in"): _watching(DEAD_EXCHANGE),
}


# lab3's services, on the same broker: each stage takes the place of one, and declares only
# what that service declares (lab3's queue names and bindings, exchange types, no arguments).
LAB3_SOURCES = ("security.incident", "survey.victimization", "migration.case")
LAB3_DLQ = "dlq_exchange"
_LAB3_VALIDATOR = Topology(
    exchanges=(EVENTS,), queues=("validator_input_queue",), queue="validator_input_queue",
    bindings=tuple(Binding("validator_input_queue", EVENTS, key) for key in LAB3_SOURCES))
# lab3's validator binds its three sources only: a broken event with another source, published as
# lab3's publisher would, is dropped by the broker (said once on stderr), not a failed publish.
_LAB3_PUBLISH = replace(_LAB3_VALIDATOR, queue=None, exchange=EVENTS, only_mandatory=LAB3_SOURCES)
LAB3_DEFAULTS: dict[tuple[str, str], Topology] = {
    ("gen", "out"): _LAB3_PUBLISH,
    ("replay", "out"): _LAB3_PUBLISH,
    ("validate", "in"): _LAB3_VALIDATOR,
    ("validate", "out"): _publish(PROCESSING, ("aggregator_queue", PROCESSING),
                                  ("audit_queue", PROCESSING)),
    ("aggregate", "in"): _consume("aggregator_queue", PROCESSING),
    ("aggregate", "out"): Topology(
        exchanges=(ANALYTICS,), queues=("audit_metrics_queue",), exchange=ANALYTICS,
        bindings=(Binding("audit_metrics_queue", ANALYTICS, "metrics.daily"),),
        optional_keys=("analytics.window", "alerts.anomaly", "deadletter")),
    ("audit", "in"): Topology(
        exchanges=(PROCESSING, ANALYTICS), queues=("audit_queue", "audit_metrics_queue"),
        bindings=(Binding("audit_queue", PROCESSING), Binding("audit_metrics_queue", ANALYTICS,
                                                              "metrics.daily")),
        queue="audit_queue", also_consume=("audit_metrics_queue",)),
    ("watch", "in"): _watching(LAB3_DLQ),
}
LAB3_DEAD = _dead(LAB3_DLQ)
WIRES = {"evtool": (DEFAULTS, DEAD), "lab3": (LAB3_DEFAULTS, LAB3_DEAD)}


RING_POINTS = "100"     # points per queue on the hash ring: with one each, 16 regions can all land on one


def partitions_exchange(n: int) -> str:
    """One ring per partition count, so a run with another N never shares a hash ring."""
    return f"aggregator_partitions.{n}"


def partition_queue(n: int, k: int) -> str:
    return f"aggregator_queue.{k}-of-{n}"


def partitioned(n: int) -> Topology:
    """Events of a region always reach the same one of n queues: a consistent-hash exchange on
    the `region` header, fed by processing_exchange. Every side declares all n queues, so the
    ring is whole before the first message and never changes while events flow."""
    ring = partitions_exchange(n)
    queues = tuple(partition_queue(n, k) for k in range(n))
    return Topology(exchanges=(PROCESSING,), hash_exchanges=(ring,),
                    exchange_bindings=((ring, PROCESSING),), queues=queues,
                    bindings=tuple(Binding(q, ring, RING_POINTS) for q in queues))


@dataclass(frozen=True)
class AmqpTarget:
    """Where to connect (pika parameters) and what to declare and use there."""

    params: pika.URLParameters = field(compare=False)
    topology: Topology
    shown: str


def connection_url(spec: str) -> str:
    """The broker and vhost an amqp:// SPEC connects to, without evtool's topology keys."""
    parts = urlsplit(spec)
    rest = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in OUR_KEYS])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))


def resolve(spec: str, amqp_url: str, stage: str, role: Side, partitions: int = 1,
            partition: int = 0, wire: str = "evtool") -> AmqpTarget:
    """`amqp` means the stage's default topology (of the pack's wire) at --amqp-url; a URL names
    its own."""
    if spec == "amqp":
        defaults, dead = WIRES.get(wire, WIRES["evtool"])
        topology = dead if role == "dead" else defaults.get((stage, role))
        if partitions > 1 and (stage, role) == ("validate", "out"):
            ring = partitioned(partitions)
            topology = replace(ring, exchange=PROCESSING, queues=(*ring.queues, "audit_queue"),
                               bindings=(*ring.bindings, Binding("audit_queue", PROCESSING)))
        elif partitions > 1 and (stage, role) == ("aggregate", "in"):
            topology = replace(partitioned(partitions), queue=partition_queue(partitions, partition))
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
