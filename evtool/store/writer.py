"""audit's SQLite writes in a process of their own, so they overlap with reading the next batch.

A writer *thread* does not overlap: Python's lock is needed to bind every row, and the reading
thread holds it, so a million events took 22 s to insert instead of 5. The process gets a batch
as marshal frames over a pipe: `p` and rows written into the open transaction as they come (the
batch's parts, sent while audit reads the rest), then `c` and its last rows; it answers each
`c` once it has committed: `k` and the batch's conflicts (marshal), or `e` and the error.
"""

from __future__ import annotations

import contextlib
import marshal
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from typing import IO, Any

from evtool.store.sqlite import Conflicts, Rows, SqliteStore, StoreError
from evtool.transports.frames import receive, send
from evtool.tuning import tune_runtime


class SqliteWriter:
    """The writing half of a SqliteStore, run by `python -m evtool.store.writer PATH`.

    Batches are pipelined: `submit` queues a frame and returns at once, so the next batch is in
    the pipe while the process commits this one; commits, and their answers, keep the order of
    submission.
    """

    kind = "sqlite"
    reads_trace = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._proc = subprocess.Popen([sys.executable, "-m", "evtool.store.writer", path],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        answer = receive(self._stdout)     # the database is open (and migrated), or why not
        if answer is None:
            raise self._ended()
        if answer:
            raise StoreError(answer.decode("utf-8", "replace"))
        self._frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._waiting: deque[Future[Conflicts]] = deque()
        self._stopped: StoreError | None = None
        self._lock = threading.Lock()
        self._sender = threading.Thread(target=self._send_all, name="audit-writer-send", daemon=True)
        self._receiver = threading.Thread(target=self._receive_all, name="audit-writer-answer",
                                          daemon=True)
        self._sender.start()
        self._receiver.start()

    def _ended(self) -> StoreError:
        self._proc.wait()
        return StoreError(f"the writer of {self.path} stopped (exit status {self._proc.returncode})")

    def submit(self, rows: Rows) -> Future[Conflicts]:
        """Commit `rows` in one transaction after the batches submitted before; the future is
        done once it has committed (or failed)."""
        done: Future[Conflicts] = Future()
        frame = b"c" + marshal.dumps(rows.by_table)
        with self._lock:
            if self._stopped is not None:
                done.set_exception(self._stopped)
            else:
                self._waiting.append(done)
                self._frames.put(frame)
        return done

    def send_ahead(self, rows: Rows) -> None:
        """Rows of the next batch `submit` takes, written as they arrive; that batch's future
        says whether they committed (once the process has stopped, it fails)."""
        if self._stopped is None:
            self._frames.put(b"p" + marshal.dumps(rows.by_table))

    def write(self, rows: Rows) -> Conflicts:
        """One transaction for the whole batch; returns once it has committed."""
        return self.submit(rows).result()

    def _send_all(self) -> None:
        while (frame := self._frames.get()) is not None:
            try:
                send(self._stdin, frame)
            except (BrokenPipeError, ValueError):
                return              # the process is gone: the receiver fails what waits

    def _receive_all(self) -> None:
        """Answers come in the order the frames went; the end of the stream fails what waits."""
        while (answer := receive(self._stdout)) is not None:
            with self._lock:
                done = self._waiting.popleft()
            if answer[:1] == b"k":
                done.set_result(marshal.loads(answer[1:]))
            else:
                done.set_exception(StoreError(answer[1:].decode("utf-8", "replace")))
        error = self._ended()
        with self._lock:
            self._stopped = error
            while self._waiting:
                self._waiting.popleft().set_exception(error)

    def close(self) -> None:
        """Ends the process once it has finished what it was given."""
        self._frames.put(None)
        self._sender.join()
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()
        self._receiver.join()
        self._proc.wait()


def serve(path: str, source: IO[bytes], sink: IO[bytes]) -> None:
    """Write each part that arrives, commit each batch and say so. A signal is for the audit
    process, which stops reading, lets the batch in hand commit and then closes the pipe. After
    a batch fails, the batches sent behind it get the same answer and are not written: nothing
    commits past a gap. A batch whose commit never comes (audit died) is rolled back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        store = SqliteStore(path)
    except StoreError as exc:
        send(sink, str(exc).encode())
        return
    try:
        send(sink, b"")
        failed = b""
        found: Conflicts = {}
        while (frame := receive(source)) is not None:
            last = frame[:1] == b"c"
            if not failed:
                by_table: dict[str, list[tuple[Any, ...]]] = marshal.loads(memoryview(frame)[1:])
                try:
                    found.update(store.write_part(Rows(by_table)))
                    if last:
                        store.commit()
                        send(sink, b"k" + marshal.dumps(found))
                        found = {}
                    continue
                except StoreError as exc:
                    failed = b"e" + (str(exc).encode() or b"cannot write")
            if last:
                send(sink, failed)
    except BrokenPipeError:
        pass                    # audit is gone: what committed stays, nothing more comes
    finally:
        store.close()


if __name__ == "__main__":
    tune_runtime()
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
