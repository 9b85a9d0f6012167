"""The contract every transport keeps: batches in, batches out, ack only after a safe write."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import NamedTuple

from evtool.errors import EndFailed


class TransportError(EndFailed):
    """A transport failed for good (after its retries): the stage exits 1 with this message."""


class OutputClosed(Exception):
    """Downstream went away (`| head`): the stage ends quietly."""


class Batch(NamedTuple):
    """Lines read together; `token` goes back to `Source.ack` once their output is safe. An
    empty batch without a token says the input was idle."""

    lines: list[bytes]
    token: object = None


class Source(ABC):
    """Reads batches of lines. `redelivers` says unacked input comes back after a crash."""

    redelivers = False
    description = "?"

    @abstractmethod
    def read(self, timeout: float | None = None) -> Batch | None:
        """The next batch; an empty batch when `timeout` seconds passed idle; None at end of input."""

    def reads_file(self, path: str) -> bool:
        """True when writing `path` would overwrite what this source is reading."""
        return False

    def extent(self) -> tuple[int, int] | None:
        """(offset where reading began, size) when the input is a regular file, else None."""
        return None

    def offset(self) -> int:
        """How far into its input file the source has read."""
        return 0

    def reconnects(self) -> int:
        """How often the source has connected again after losing its connection."""
        return 0

    def ack(self, token: object) -> None:  # noqa: B027 - acking is a no-op for pipes and files
        """Everything produced from the batch with this token is safe downstream."""

    def ack_all_but(self, keep: Callable[[list[bytes]], Collection[bytes]],  # noqa: B027
                    upto: object) -> None:
        """At a stop: ack every message of the batches up to token `upto` (those the stage
        processed) not yet acked, except the lines `keep` picks from them, which come again."""

    def close(self) -> None:  # noqa: B027
        """Release what the source holds."""


class Sink(ABC):
    """Writes batches of lines; `flush` returns once all written lines are safe."""

    description = "?"
    # A signal may stop `flush` at once. Not for a byte stream: a write a signal cuts short
    # returns how much it wrote only if nothing raises before the count is kept.
    stops_mid_flush = True

    @abstractmethod
    def write(self, lines: list[bytes]) -> None:
        """Queue lines for output (no newline at their ends)."""

    def reconnects(self) -> int:
        """How often the sink has connected again after losing its connection."""
        return 0

    def dropped(self) -> int:
        """How many flushed lines the other end dropped since the last call (a broker with no
        queue bound to their routing key): they are not out."""
        return 0

    @abstractmethod
    def flush(self, within: float | None = None) -> None:
        """Block until every written line is out (in the pipe or file, or confirmed by the broker);
        `within` seconds at the most where that can wait on someone else (TransportError then)."""

    def refused(self) -> list[tuple[bytes, str]]:
        """Lines written since the last call that this transport cannot carry, and why (a record
        whose routing key AMQP cannot hold): the stage makes them dead letters."""
        return []

    def close(self) -> None:
        self.flush()
