"""audit's SQLite writes in a process of their own, so they overlap with reading the next batch.

A writer *thread* does not overlap: Python's lock is needed to bind every row, and the reading
thread holds it, so a million events took 22 s to insert instead of 5. The process gets each
batch as one marshal frame over a pipe and answers with an empty frame once it has committed,
or with the error.
"""

from __future__ import annotations

import contextlib
import marshal
import signal
import struct
import subprocess
import sys
from typing import IO, Any

from evtool.store.sqlite import Rows, SqliteStore, StoreError

_SIZE = struct.Struct("<Q")


def _send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_SIZE.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes | None:
    """One frame, or None at the end of the stream (the other side closed it, or died)."""
    head = stream.read(_SIZE.size)
    if len(head) < _SIZE.size:
        return None
    size = _SIZE.unpack(head)[0]
    payload = stream.read(size)
    return payload if len(payload) == size else None


class SqliteWriter:
    """The writing half of a SqliteStore, run by `python -m evtool.store.writer PATH`."""

    kind = "sqlite"
    reads_trace = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._proc = subprocess.Popen([sys.executable, "-m", "evtool.store.writer", path],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._reply()           # the database is open (and migrated), or why not

    def _reply(self) -> None:
        assert self._proc.stdout is not None
        answer = _receive(self._proc.stdout)
        if answer is None:
            self._proc.wait()
            raise StoreError(f"the writer of {self.path} stopped (exit status {self._proc.returncode})")
        if answer:
            raise StoreError(answer.decode("utf-8", "replace"))

    def write(self, rows: Rows) -> None:
        """One transaction for the whole batch; returns once it has committed."""
        assert self._proc.stdin is not None
        try:
            _send(self._proc.stdin, marshal.dumps(rows.by_table))
        except BrokenPipeError:
            self._proc.wait()
            raise StoreError(f"the writer of {self.path} stopped (exit status "
                             f"{self._proc.returncode})") from None
        self._reply()

    def close(self) -> None:
        """Ends the process once it has finished what it was given."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        self._proc.wait()


def serve(path: str, source: IO[bytes], sink: IO[bytes]) -> None:
    """Commit each batch that arrives and say so. A signal is for the audit process, which
    stops reading, lets the batch in hand commit and then closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        store = SqliteStore(path)
    except StoreError as exc:
        _send(sink, str(exc).encode())
        return
    try:
        _send(sink, b"")
        while (frame := _receive(source)) is not None:
            by_table: dict[str, list[tuple[Any, ...]]] = marshal.loads(frame)
            try:
                store.write(Rows(by_table))
            except StoreError as exc:
                _send(sink, str(exc).encode() or b"cannot write")
            else:
                _send(sink, b"")
    except BrokenPipeError:
        pass                    # audit is gone: what committed stays, nothing more comes
    finally:
        store.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
