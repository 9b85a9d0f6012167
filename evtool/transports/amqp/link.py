"""One broker connection on its own I/O thread, so heartbeats flow however long a batch takes.

The stage's thread talks to it only through thread-safe calls: `publish` + `wait_confirmed`
(publisher confirms, many outstanding), `take` (consumed messages) and `ack` (multiple=True).
A dropped connection is retried with backoff: unconfirmed messages are published again and
deliveries from before the drop are not acked (the broker redelivers them).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pika
from pika.adapters.select_connection import IOLoop
from pika.exceptions import ChannelClosedByBroker, ProbableAccessDeniedError, ProbableAuthenticationError
from pika.spec import Basic

from evtool.core.binarymode import structured
from evtool.core.wire import Binary
from evtool.transports.amqp.declare import Declarations
from evtool.transports.amqp.outbox import Outbox, Outgoing
from evtool.transports.amqp.topology import AmqpTarget, redact
from evtool.transports.backoff import pause
from evtool.transports.base import TransportError

MAX_PREFETCH = 65_535          # basic.qos prefetch_count is 16 bits; past it, 0 means unlimited
FATAL_REPLY_CODES = {403, 404, 406}


class Delivery(NamedTuple):
    generation: int
    tag: int
    body: bytes
    redelivered: bool = False


class Link:
    """A connection with one channel for the side it serves (consume or publish)."""

    def __init__(self, target: AmqpTarget, *, consume: bool, prefetch: int, connect_timeout: float,
                 log: Callable[[str], None], binary: Binary | None = None, grace: float = 0.0) -> None:
        """`binary`: how a message in a binary mode (attributes in headers) is read as the
        structured event it stands for (the pack's wire.json). `grace`: seconds a restored
        connection waits before its input may count as quiet (UPSTREAM_GRACE)."""
        self.target = target
        self.binary = binary
        self.grace = grace
        self.consume = consume
        self.prefetch = prefetch
        self.connect_timeout = connect_timeout
        self.log = log
        self.ioloop = IOLoop()
        self.generation = 0
        self.reconnects = 0
        self.declarations = Declarations(target.topology, consume)
        self.inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._fatal: str | None = None
        self._requested = 0
        self._confirmed = 0
        self.outbox = Outbox()
        self._delivered_tag = 0
        self._acked_tag = 0
        self.unroutable = 0             # returned for a key nobody need be bound to: dropped
        self._conn: pika.SelectConnection | None = None
        self._ch: Any = None
        self._closing = False
        self._failing_since: float | None = None
        self._nacked_since: float | None = None
        self._nack_attempt = 0
        self._hold = False
        self._quiet_from: float | None = None       # when a connected input may count as quiet
        self._wanted = False        # the stage has read: consume on every channel from now on
        self._consuming = False     # on the current channel
        self._attempt = 0
        self._thread = threading.Thread(target=self._run, name="amqp-io", daemon=True)

    # -- the stage's thread ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + self.connect_timeout + 5
        while not self._ready.wait(0.1):
            self._raise_if_failed()
            if time.monotonic() > deadline:
                raise TransportError(f"cannot reach the broker at {self.target.shown}")

    def publish(self, messages: list[Outgoing]) -> None:
        self._raise_if_failed()
        with self._cond:
            self._requested += len(messages)
        self.ioloop.add_callback_threadsafe(lambda: self._enqueue(messages))

    def wait_confirmed(self, within: float | None = None) -> None:
        """Block until the broker has confirmed every message published so far (or `within`
        seconds have passed: TransportError)."""
        deadline = None if within is None else time.monotonic() + within
        with self._cond:
            while self._confirmed < self._requested and self._fatal is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise TransportError(f"gave up waiting for the broker to confirm "
                                         f"{self._requested - self._confirmed} message(s)")
                self._cond.wait(0.5)
        self._raise_if_failed()

    def take(self, limit: int, timeout: float) -> list[Delivery]:
        """Up to `limit` deliveries of the current connection; [] after `timeout` idle seconds
        while connected (an input that is down is not quiet: aggregate must not flush for it;
        nor is one restored less than `grace` seconds ago). Deliveries from before a reconnect
        are dropped: the broker redelivers them. The first call starts the consumer, so that a
        consumer on the broker means a stage whose outputs are declared too."""
        deadline = time.monotonic() + timeout
        while True:
            self._raise_if_failed()
            if not self._wanted:
                self._wanted = True
                self.ioloop.add_callback_threadsafe(self._consume)
            try:
                first = self.inbox.get(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            except queue.Empty:
                self._starving()
                now, quiet_from = time.monotonic(), self._quiet_from
                if now >= deadline:
                    if quiet_from is not None and now - quiet_from >= timeout:
                        return []
                    deadline = (quiet_from or now) + timeout
                continue
            got = [first]
            with contextlib.suppress(queue.Empty):
                while len(got) < limit:
                    got.append(self.inbox.get_nowait())
            current = self.generation
            fresh = [d for d in got if d.generation == current]
            if fresh:
                return fresh

    def _starving(self) -> None:
        """Waiting for input while nearly all of the prefetch is unacked: the stage holds acks
        (aggregate's open windows), so let more in, or it would wait forever."""
        if self.prefetch and self._delivered_tag - self._acked_tag >= 0.8 * self.prefetch:
            self.ioloop.add_callback_threadsafe(self._raise_prefetch)

    def _raise_prefetch(self) -> None:
        if not self.prefetch or self._ch is None or not self._ch.is_open:
            return
        self.prefetch = self.prefetch * 2 if self.prefetch * 2 <= MAX_PREFETCH else 0
        self.log(f"holding many unacked messages: prefetch raised to {self.prefetch or 'unlimited'}")
        self._ch.basic_qos(prefetch_count=self.prefetch, global_qos=True)

    def ack(self, generation: int, tag: int) -> None:
        self.ioloop.add_callback_threadsafe(lambda: self._ack(generation, tag))

    def ack_each(self, generation: int, tags: list[int]) -> None:
        """Ack these deliveries one by one (at a stop, to leave the others for redelivery)."""
        self.ioloop.add_callback_threadsafe(lambda: self._ack_each(generation, tags))

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            self.ioloop.add_callback_threadsafe(self._shutdown)
        self._thread.join(timeout=10)

    def _raise_if_failed(self) -> None:
        if self._fatal is not None:
            raise TransportError(self._fatal)

    # -- the I/O thread ----------------------------------------------------------------------
    def _run(self) -> None:
        self._connect()
        self.ioloop.start()

    def _connect(self) -> None:
        if self._closing:
            self.ioloop.stop()
            return
        self._attempt += 1
        self._conn = pika.SelectConnection(
            self.target.params, on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error, on_close_callback=self._on_closed,
            custom_ioloop=self.ioloop)

    def _fail(self, message: str) -> None:
        with self._cond:
            self._fatal = redact(message)
            self._cond.notify_all()
        self._closing = True
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        else:
            self.ioloop.stop()

    def _retry(self, why: str, opening: bool = False) -> None:
        self._ready.clear()
        self._quiet_from = None
        with self._cond:
            self.generation += 1           # from now on, acks of earlier deliveries are void
        self._ch = None
        if self._closing:
            self.ioloop.stop()
            return
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since > self.connect_timeout:
            self._fail(f"broker unreachable at {self.target.shown} for {self.connect_timeout:g} s "
                       f"({why})")
            return
        delay = pause(self._attempt)
        what = "cannot connect to" if opening else "lost the connection to"
        self.log(f"{what} the broker at {self.target.shown} ({redact(why)}); "
                 f"retrying in {delay:.1f} s (attempt {self._attempt})")
        self.ioloop.call_later(delay, self._connect)

    def _on_open_error(self, _conn: Any, error: BaseException) -> None:
        if isinstance(error, (ProbableAuthenticationError, ProbableAccessDeniedError)):
            self._fail(f"the broker at {self.target.shown} refused the login or vhost")
            return
        self._retry(_describe(error), opening=True)

    def _on_closed(self, _conn: Any, reason: BaseException) -> None:
        if self._closing:
            self.ioloop.stop()
            return
        self.reconnects += 1
        self._retry(_describe(reason))

    def _on_open(self, conn: Any) -> None:
        conn.add_on_connection_blocked_callback(self._on_blocked)
        conn.add_on_connection_unblocked_callback(self._on_unblocked)
        conn.channel(on_open_callback=self._on_channel)

    def _on_blocked(self, _conn: Any, frame: Any) -> None:
        """A broker in a resource alarm holds every publisher: without a word the stage would
        seem hung."""
        reason = getattr(frame.method, "reason", "") or "a resource alarm"
        self.log(f"the broker at {self.target.shown} blocks publishing ({reason}): waiting for "
                 "it to lift its alarm (rabbitmqctl status lists it)")

    def _on_unblocked(self, _conn: Any, _frame: Any) -> None:
        self.log(f"the broker at {self.target.shown} lifted its alarm: publishing again")

    def _on_channel(self, ch: Any) -> None:
        ch.add_on_close_callback(self._on_channel_closed)
        ch.add_on_cancel_callback(self._on_cancelled)
        ch.add_on_return_callback(self._on_return)
        self._ch = ch
        self._consuming = False
        self.declarations.run(ch, prefetch=self.prefetch, on_confirm=self._on_confirm, done=self._up)

    def _consume(self) -> None:
        ch = self._ch
        if (self.consume and self._wanted and not self._consuming and ch is not None
                and ch.is_open and self._ready.is_set()):
            self._consuming = True
            self.declarations.start_consuming(ch, self._on_message)

    def _up(self) -> None:
        self.outbox.reconnected()
        self._delivered_tag = self._acked_tag = 0
        self._quiet_from = time.monotonic()
        if self._failing_since is not None:
            self._quiet_from += self.grace
            self.log(f"broker connection to {self.target.shown} restored")
            if self.consume and not self.target.topology.queue:
                self.log("this stage taps the exchange with a queue of its own, which went with the "
                         "connection: what was published meanwhile is not seen here")
        self._failing_since = None
        self._attempt = 0
        self._ready.set()
        self._consume()
        self._pump()

    def _on_channel_closed(self, _ch: Any, reason: BaseException) -> None:
        declaring, found = self.declarations.declaring, self.declarations.as_found
        if (isinstance(reason, ChannelClosedByBroker) and reason.reply_code == 406
                and declaring and declaring not in found and not self._ready.is_set()):
            # declared by someone else with other settings: use it as it is, on a new channel
            self.log(f"{declaring!r} exists with other settings; using it as it is")
            found.add(declaring)
            if self._conn is not None and self._conn.is_open:
                self._conn.channel(on_open_callback=self._on_channel)
            return
        if isinstance(reason, ChannelClosedByBroker) and reason.reply_code in FATAL_REPLY_CODES:
            self._fail(f"the broker refused {self.target.shown}: {reason.reply_text}")
        elif not self._closing and self._conn is not None and self._conn.is_open:
            self._conn.close()                     # reconnect from scratch via _on_closed

    def _on_cancelled(self, _frame: Any) -> None:
        """The broker ended the consumer (its queue deleted, a failover): connect again, which
        declares the queue anew and consumes from it, rather than wait on nothing for ever."""
        self.log(f"the broker cancelled the consumer of {self.declarations.queue_name!r} (queue "
                 "deleted, or a failover): connecting again")
        if not self._closing and self._conn is not None and self._conn.is_open:
            self._conn.close()

    def _on_return(self, _ch: Any, method: Any, _props: Any, _body: bytes) -> None:
        """Every publish is mandatory, so the broker says what it drops: a key nobody need be
        bound to is counted apart, any other fails the stage."""
        if not self.target.topology.mandatory(method.routing_key):
            self.unroutable += 1
            return
        self._fail(f"unroutable message: no queue is bound to exchange {method.exchange!r} for "
                   f"routing key {method.routing_key!r} ({self.target.shown})")

    def _on_message(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        self._delivered_tag = method.delivery_tag
        if self.binary is not None:
            body = structured(self.binary, props.headers, props.content_type, body) or body
        self.inbox.put(Delivery(self.generation, method.delivery_tag, body, method.redelivered))

    def _ack(self, generation: int, tag: int) -> None:
        if generation == self.generation and self._ch is not None and self._ch.is_open:
            self._ch.basic_ack(tag, multiple=True)
            self._acked_tag = max(self._acked_tag, tag)

    def _ack_each(self, generation: int, tags: list[int]) -> None:
        if generation == self.generation and self._ch is not None and self._ch.is_open:
            for tag in tags:
                self._ch.basic_ack(tag)

    def _enqueue(self, messages: list[Outgoing]) -> None:
        self.outbox.add(messages)
        self._pump()

    def _pump(self) -> None:
        ch = self._ch
        if ch is None or not self._ready.is_set() or not ch.is_open or self._hold:
            return
        take = self.outbox.take
        while (msg := take()) is not None:
            try:
                ch.basic_publish(msg.exchange, msg.key, msg.body, msg.props, mandatory=True)
            except Exception as exc:
                self._fail(f"cannot publish to {self.target.shown}: {_describe(exc)}")
                return

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, Basic.Nack):
            self._refused(self.outbox.refuse(method.delivery_tag, method.multiple))
            return
        self._nacked_since = None
        confirmed = self.outbox.confirm(method.delivery_tag, method.multiple)
        with self._cond:
            self._confirmed += confirmed
            self._cond.notify_all()
        self._pump()

    def _refused(self, count: int) -> None:
        """The broker said no (basic.nack: a full queue with overflow reject-publish, say): publish
        again after a pause, not in a loop; past --connect-timeout, give up with one line."""
        now = time.monotonic()
        if self._nacked_since is None:
            self._nacked_since = now
            self._nack_attempt = 0
        if now - self._nacked_since > self.connect_timeout:
            self._fail(f"the broker at {self.target.shown} kept refusing messages (basic.nack) "
                       f"for {self.connect_timeout:g} s: is a queue full (max-length with "
                       "overflow reject-publish)?")
            return
        if self._hold:
            return
        self._nack_attempt += 1
        delay = pause(self._nack_attempt)
        self.log(f"the broker refused {count} message(s) (basic.nack); publishing again in "
                 f"{delay:.1f} s")
        self._hold = True
        self.ioloop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._hold = False
        self.outbox.send_refused_again()
        self._pump()

    def _shutdown(self) -> None:
        self._closing = True
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        else:
            self.ioloop.stop()


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 160 else text[:157] + "..."
