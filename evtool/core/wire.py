"""A pack's broker side as data (wire.json): topology per stage side, dead letters, the fields its
derived records carry on the wire, how foreign derived records read back, where replay finds a
foreign audit record. The format's JSON Schema ships in evtool/schemas/wire/."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evtool.core.invariants import FOREIGN_INVARIANTS
from evtool.core.printable import shortened
from evtool.core.roles import MISSING, resolve
from evtool.core.wiremap import Expr

SOURCES = "$sources"
Clock = Callable[[], str]


SHORTSTR = 255              # bytes an AMQP short string (a name, a routing key) holds


class WireError(ValueError):
    """A wire.json that cannot be used; the message names the file and the field."""


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


@dataclass(frozen=True)
class Foreign:
    """One foreign shape of a derived record: when a record is one, and the evtool record it is."""

    kind: str
    equals: tuple[tuple[tuple[str, ...], Any], ...]
    has: tuple[tuple[str, ...], ...]
    lacks: tuple[tuple[str, ...], ...]
    fields: tuple[tuple[str, Expr], ...]

    def matches(self, record: dict[str, Any]) -> bool:
        return all(resolve(record, p) is not MISSING for p in self.has) and \
            all(resolve(record, p) is MISSING for p in self.lacks) and \
            all(resolve(record, p) == v for p, v in self.equals)


@dataclass(frozen=True)
class SqliteRecord:
    """A foreign audit database: the events table, its columns by event field, the trace table."""

    table: str
    fields: tuple[tuple[str, str], ...]
    json_fields: tuple[tuple[str, str], ...] = ()
    omit_null: frozenset[str] = frozenset()
    trace: tuple[str, str, str] | None = None        # (table, event column, metric column)


@dataclass(frozen=True)
class Binary:
    """Events sent as attributes in headers (one of `prefixes` + name) and the data as the body."""

    prefixes: tuple[str, ...]
    body: str
    body_base64: str | None
    content_type: str | None


@dataclass(frozen=True)
class Wire:
    """Everything a pack says about its broker side and its records on the wire."""

    sides: Mapping[tuple[str, str], Topology]
    dead: Topology
    routes: Mapping[str, str] = field(default_factory=dict)
    dead_letter_body: str = "record"
    content_type: str = "application/json"
    records: Mapping[str, tuple[tuple[str, Expr], ...]] = field(default_factory=dict)
    foreign: tuple[Foreign, ...] = ()
    binary: Binary | None = None
    sqlite: SqliteRecord | None = None
    jsonl_event: str | None = None
    document: Mapping[str, Any] = field(default_factory=dict, compare=False)
    where: str = ""                                  # the file it was read from

    def topology(self, stage: str, side: str) -> Topology | None:
        return self.dead if side == "dead" else self.sides.get((stage, side))

    @property
    def stamps(self) -> bool:
        """Whether a dead letter carries the wall clock (a field of the pack's says so)."""
        return any(e.clock for _, e in self.records.get("deadletter", ()))

    def extra(self, kind: str, record: dict[str, Any], clock: Clock | None = None) -> dict[str, Any]:
        """The fields a derived record carries on this wire beside evtool's own."""
        return {name: expr.value(record, clock) for name, expr in self.records.get(kind, ())
                if name not in record}

    def contradiction(self, record: dict[str, Any]) -> str | None:
        """A derived record carrying this wire's fields that disagree with its own (a metric
        whose `metrics` are not its `counts`): what is wrong, or None."""
        for name, expr in self.records.get(record.get("kind", ""), ()):
            if name in record and not expr.clock:
                try:
                    expected = expr.value(record, None)
                except ValueError:
                    continue
                if record[name] != expected:
                    return f"{name} {shortened(record[name])} disagrees with {expr.shown}"
        return None

    def as_evtool(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The evtool derived record for one of this wire's foreign shapes (no `kind`), or None
        (an event). A foreign shape that does not hold together is a ValueError naming the field."""
        if not self.foreign or "kind" in record:
            return None
        for shape in self.foreign:
            if shape.matches(record):
                made: dict[str, Any] = {"kind": shape.kind}
                for name, expr in shape.fields:
                    made[name] = expr.value(record, None)
                problem = FOREIGN_INVARIANTS.get(shape.kind, _fine)(made)
                if problem is not None:
                    raise ValueError(problem)
                return made
        return None

    def as_evtool_or_none(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """as_evtool, with a foreign shape that does not hold together read as no shape at all."""
        try:
            return self.as_evtool(record)
        except ValueError:
            return None

    def partitioned_validate_out(self, ring: Topology, aggregate_queue: str | None) -> Topology:
        """validate's output when aggregation is partitioned: the ring in place of the aggregator's
        queue, the rest of its bindings kept."""
        out = self.sides.get(("validate", "out"), Topology())
        kept = tuple(b for b in out.bindings if b.queue != aggregate_queue)
        return replace(ring, exchange=out.exchange, queues=(*ring.queues, *(b.queue for b in kept)),
                       bindings=(*ring.bindings, *kept), kinds=out.kinds)


def _fine(_record: dict[str, Any]) -> str | None:
    return None


def too_long(name: str) -> str | None:
    """Why AMQP cannot carry `name` (it counts bytes, a schema characters), or None: pika refused
    to send such a name, and the stage took that for a lost connection until --connect-timeout."""
    size = len(name.encode())
    return f"is {size} bytes long: AMQP names hold at most {SHORTSTR}" if size > SHORTSTR else None


def check_names(names: Sequence[str], where: str) -> None:
    """WireError for the first name AMQP cannot carry."""
    for name in names:
        problem = too_long(name)
        if problem is not None:
            raise WireError(f"{where}: {name[:40]!r}... {problem}")


def side_topology(doc: Mapping[str, Any], exchanges: Mapping[str, str], sources: Sequence[str],
                  where: str) -> Topology:
    """One side of wire.json as a Topology; an exchange it names must be one of `exchanges`."""
    def keys(value: Any) -> tuple[str, ...]:
        return tuple(sources) if value == SOURCES else tuple(value or ())

    bindings: list[Binding] = []
    for at, bind in enumerate(doc.get("bind", ())):
        if bind["exchange"] not in exchanges:
            raise WireError(f"{where}.bind[{at}].exchange: {bind['exchange']!r} is not one of "
                            "'exchanges'")
        for key in keys(bind["key"]) if bind.get("key") == SOURCES else (bind.get("key", "#"),):
            bindings.append(Binding(bind["queue"], bind["exchange"], key))
    publish = doc.get("publish")
    if publish and publish not in exchanges:
        raise WireError(f"{where}.publish: {publish!r} is not one of 'exchanges'")
    used = tuple(dict.fromkeys(([publish] if publish else []) + [b.exchange for b in bindings]))
    consume = list(doc.get("consume", ()))
    queues = tuple(dict.fromkeys(q for q in [*doc.get("declare", ()), *consume,
                                             *(b.queue for b in bindings)] if q))
    routing_key = doc.get("routing_key")
    check_names([*used, *queues, *(b.key for b in bindings), *([routing_key] if routing_key else [])],
                where)
    return Topology(
        exchanges=used, queues=queues, bindings=tuple(bindings),
        queue=consume[0] if consume else None, also_consume=tuple(consume[1:]),
        exchange=publish, routing_key=routing_key,
        kinds=tuple((e, exchanges[e]) for e in used if exchanges[e] != "topic"),
        optional_keys=keys(doc.get("optional")), only_mandatory=keys(doc.get("mandatory")))
