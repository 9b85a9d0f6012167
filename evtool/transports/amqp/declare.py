"""What one side of a broker link declares on each new channel, as the pack's wire says: one step
after another, each sent from the previous one's reply (pika's asynchronous adapter)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from evtool.core.wire import Binding, Topology

Step = Callable[..., Any]


class Declarations:
    """Exchanges, hash rings, exchange bindings, queues (a private one for a consumer whose
    topology names none), queue bindings, then the prefetch or publisher confirms; a consumer
    starts apart (`start_consuming`), when the stage first reads. An exchange or
    queue someone else declared with other settings is used as found: the link adds it to
    `as_found` when the broker refuses `declaring`, and declares the rest on a new channel."""

    def __init__(self, topology: Topology, consume: bool) -> None:
        self.topology = topology
        self.consume = consume
        self.queue_name = topology.queue or ""      # a private queue's, once the broker names it
        self.declaring = ""                          # the exchange or queue being declared now
        self.as_found: set[str] = set()

    def run(self, ch: Any, *, prefetch: int, on_confirm: Step, done: Callable[[], None]) -> None:
        """Declare everything on `ch`, then set the prefetch or start confirming (`on_confirm`),
        then call `done`."""
        topo = self.topology
        steps: list[Step] = []
        for exchange in topo.exchanges:
            if exchange and exchange not in self.as_found:
                steps.append(partial(self._exchange, ch, exchange, topo.kind_of(exchange)))
        for ring in topo.hash_exchanges:
            steps.append(partial(ch.exchange_declare, ring, exchange_type="x-consistent-hash",
                                 durable=True, arguments={"hash-header": "region"}))
        for destination, source in topo.exchange_bindings:
            steps.append(partial(ch.exchange_bind, destination, source, routing_key="#"))
        for name in topo.queues:
            if name not in self.as_found:
                steps.append(partial(self._queue, ch, name))
        if self.consume and not topo.queue:
            steps.append(partial(self._private, ch))
        for binding in topo.bindings:
            steps.append(partial(self._bind, ch, binding))
        if self.consume:
            # channel-wide (global) so that raising it later applies to the running consumer
            steps.append(partial(ch.basic_qos, prefetch_count=prefetch, global_qos=True))
        else:
            steps.append(partial(ch.confirm_delivery, on_confirm))
        self._chain(steps, done)

    def _chain(self, steps: list[Step], last: Callable[[], None]) -> None:
        if not steps:
            self.declaring = ""
            last()
            return
        first, rest = steps[0], steps[1:]
        first(callback=lambda _frame: self._chain(rest, last))

    def _exchange(self, ch: Any, name: str, kind: str, callback: Step) -> None:
        self.declaring = name
        ch.exchange_declare(name, exchange_type=kind, durable=True, callback=callback)

    def _queue(self, ch: Any, name: str, callback: Step) -> None:
        self.declaring = name
        ch.queue_declare(name, durable=True, callback=callback)

    def _private(self, ch: Any, callback: Step) -> None:
        def named(frame: Any) -> None:
            self.queue_name = frame.method.queue
            callback(frame)

        ch.queue_declare("", exclusive=True, auto_delete=True, callback=named)

    def _bind(self, ch: Any, binding: Binding, callback: Step) -> None:
        # a private queue's name is known only once it is declared
        ch.queue_bind(binding.queue or self.queue_name, binding.exchange, routing_key=binding.key,
                      callback=callback)

    def start_consuming(self, ch: Any, on_message: Step) -> None:
        """Consume the topology's queues on `ch`, declared by `run`."""
        names = [self.queue_name, *self.topology.also_consume]

        def next_one(_frame: Any = None) -> None:
            if names:
                ch.basic_consume(names.pop(0), on_message, auto_ack=False, callback=next_one)

        next_one()
