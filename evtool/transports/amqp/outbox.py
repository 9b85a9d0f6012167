"""What a publishing link owes the broker: messages waiting to go, sent and not yet confirmed,
refused. Pure state, so that the order a reconnect or a refusal keeps is tested without one."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from operator import itemgetter
from typing import NamedTuple

import pika

WINDOW = 10_000                 # messages sent and not yet confirmed, at most


class Outgoing(NamedTuple):
    exchange: str
    key: str
    body: bytes
    props: pika.BasicProperties


# a message and its place in the stream (the order it was added, so the order first sent)
Entry = tuple[int, Outgoing]
_PLACE = itemgetter(0)


class Outbox:
    """Messages by the delivery tag the channel gives them (1, 2, ... per channel, as publisher
    confirms count): a confirm settles them, a refusal (basic.nack) keeps them to send again.
    Whatever goes again goes by its place in the stream, not by the tag it last had: a message
    refused and sent again carries a later tag than one sent after it the first time."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.pending: deque[Entry] = deque()
        self.unconfirmed: OrderedDict[int, Entry] = OrderedDict()
        self.refused: dict[int, Entry] = {}
        self._tag = 0
        self._added = 0

    def add(self, messages: list[Outgoing]) -> None:
        start = self._added
        self._added += len(messages)
        self.pending.extend(enumerate(messages, start))

    def take(self) -> Outgoing | None:
        """The next message to send, counted as sent (its tag the channel's next), or None when
        nothing waits or the window is full."""
        if not self.pending or len(self.unconfirmed) >= self.window:
            return None
        entry = self.pending.popleft()
        self._tag += 1
        self.unconfirmed[self._tag] = entry
        return entry[1]

    def _answered(self, tag: int, multiple: bool) -> list[int]:
        if not multiple:
            return [tag] if tag in self.unconfirmed else []
        tags: list[int] = []
        for sent in self.unconfirmed:
            if sent > tag:
                break
            tags.append(sent)
        return tags

    def confirm(self, tag: int, multiple: bool) -> int:
        """The broker has the message `tag` (and every one before it, if `multiple`): how many
        that settled."""
        tags = self._answered(tag, multiple)
        for sent in tags:
            del self.unconfirmed[sent]
        return len(tags)

    def refuse(self, tag: int, multiple: bool) -> int:
        """The broker refused `tag` (and those before it, if `multiple`): kept to send again."""
        tags = self._answered(tag, multiple)
        for sent in tags:
            self.refused[sent] = self.unconfirmed.pop(sent)
        return len(tags)

    def send_refused_again(self) -> None:
        """The refused messages back among what waits, in the order first sent."""
        self._requeue(self.refused.values())

    def reconnected(self) -> None:
        """A new channel numbers from 1 again: everything not confirmed goes back among what
        waits, in the order first sent (a reconnect must not reorder a stream)."""
        self._requeue([*self.unconfirmed.values(), *self.refused.values()])
        self.unconfirmed.clear()
        self._tag = 0

    def _requeue(self, entries: Iterable[Entry]) -> None:
        """`entries` back before every message never sent, merged by place with those sent
        before and waiting to go again."""
        back = list(entries)
        self.refused = {}
        if not back:
            return
        pending, last = self.pending, max(map(_PLACE, back))
        while pending and pending[0][0] < last:
            back.append(pending.popleft())
        back.sort(key=_PLACE)
        pending.extendleft(reversed(back))
