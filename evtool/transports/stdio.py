"""NDJSON over file descriptors: standard I/O, files and pipes, read and written in large chunks."""

from __future__ import annotations

import contextlib
import os
import select
import stat
from collections.abc import Callable

from evtool.transports.base import Batch, OutputClosed, Sink, Source, TransportError

CHUNK = 1 << 20
MAX_PARTS = 64              # parts a sink's flush hands writev (a few writes' worth, under IOV_MAX)
F_SETPIPE_SZ = 1031         # Linux's fcntl; fcntl.F_SETPIPE_SZ from Python 3.10, on Linux only


def read_chunk(fd: int, buffer: bytearray) -> bytes:
    """Up to a buffer's worth from `fd`, b"" at its end. Read into one reused buffer, then copied:
    os.read allocates a whole chunk and shrinks it to what came, and a writer slower than the
    reader gives short reads, each leaving a hole in the heap (RSS rose to a plateau of 84 MB)."""
    got = os.readv(fd, [buffer])
    return bytes(memoryview(buffer)[:got])


def write_all(fd: int, parts: list[bytes]) -> None:
    """Every part written in order, by writev, going on where a short write stopped (a stop, a
    profiler, a signal cuts a large pipe write short)."""
    views = [memoryview(part) for part in parts]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views:
            views[0] = views[0][written:]


def widen_pipe(fd: int) -> None:
    """A pipe holds 64 KiB by default: stages in a shell pipeline then wake, read, process and
    write in 64 KiB steps. Ask Linux for a chunk's worth (up to /proc/sys/fs/pipe-max-size);
    anything else, or a refusal, leaves the descriptor as it is."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        import fcntl
    except (OSError, ImportError):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)


class FdSource(Source):
    """Streams lines from a descriptor; a line over `max_line_bytes` is cut to `max_line_bytes + 1`
    bytes while reading, so a stage sees it is too large without it ever being held whole."""

    def __init__(self, fd: int, max_line_bytes: int, description: str, owned: bool = False) -> None:
        widen_pipe(fd)
        self.fd = fd
        self.cap = max_line_bytes
        self.description = description
        self._owned = owned
        self._tail = b""
        self._skipping = False
        self._eof = False
        self._buffer = bytearray(CHUNK)

    def extent(self) -> tuple[int, int] | None:
        try:
            info = os.fstat(self.fd)
            return (os.lseek(self.fd, 0, os.SEEK_CUR), info.st_size) if stat.S_ISREG(info.st_mode) else None
        except OSError:
            return None

    def offset(self) -> int:
        try:
            return os.lseek(self.fd, 0, os.SEEK_CUR)
        except OSError:
            return 0

    def reads_file(self, path: str) -> bool:
        try:
            mine, theirs = os.fstat(self.fd), os.stat(path)
        except OSError:
            return False
        return stat.S_ISREG(mine.st_mode) and (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)

    def position(self) -> tuple[int, bool]:
        """Where another reader of this file would go on: just past the last line returned, and
        whether that is inside a line cut for its length (whose rest it must skip)."""
        return self.offset() - len(self._tail), self._skipping

    def go_on_from(self, position: tuple[int, bool]) -> None:
        """Read on from a `position` another reader of the same file reached."""
        os.lseek(self.fd, position[0], os.SEEK_SET)
        self._tail, self._skipping = b"", position[1]

    def read(self, timeout: float | None = None) -> Batch | None:
        while not self._eof:
            if timeout is not None:
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if not ready:
                    return Batch([])
            try:
                chunk = read_chunk(self.fd, self._buffer)
            except OSError as exc:
                raise TransportError(f"cannot read {self.description}: {exc.strerror}") from None
            if not chunk:
                self._eof = True
                last, self._tail = self._tail, b""
                lines = self._clean([last], b"\r" in last)
            else:
                lines = self._split(chunk)
            if lines:
                return Batch(lines)
        return None

    def _split(self, chunk: bytes) -> list[bytes]:
        data = self._tail + chunk if self._tail else chunk
        parts = data.split(b"\n")
        tail = parts.pop()
        if self._skipping:
            if not parts:
                return []
            del parts[0]
            self._skipping = False
        if len(tail) > self.cap:
            parts.append(tail[: self.cap + 1])
            tail = b""
            self._skipping = True
        self._tail = tail
        return self._clean(parts, b"\r" in data)      # one byte: memchr, not a search

    def _clean(self, parts: list[bytes], crlf: bool) -> list[bytes]:
        """Drop blank lines and CRs of CRLF ends; cut over-long lines to cap + 1 bytes."""
        if crlf:
            parts = [p[:-1] if p.endswith(b"\r") else p for p in parts]
        lines = parts if all(parts) else [p for p in parts if p]
        cap = self.cap
        if lines and max(map(len, lines)) > cap:
            lines = [p if len(p) <= cap else p[: cap + 1] for p in lines]
        return lines

    def close(self) -> None:
        if self._owned:
            os.close(self.fd)


class ChainSource(Source):
    """Several files read one after another as one input, as jq and Miller take them; a file's
    last line ends with the file, never glued to the next file's first."""

    def __init__(self, sources: list[FdSource]) -> None:
        self.sources = sources
        self._at = 0
        self.description = ", ".join(source.description for source in sources)

    def reads_file(self, path: str) -> bool:
        return any(source.reads_file(path) for source in self.sources)

    def read(self, timeout: float | None = None) -> Batch | None:
        while self._at < len(self.sources):
            batch = self.sources[self._at].read(timeout)
            if batch is not None:
                return batch
            self._at += 1
        return None

    def close(self) -> None:
        for source in self.sources:
            source.close()


class FdSink(Sink):
    """Buffers lines and writes them in chunks of about a MiB; `flush` writes everything now."""

    stops_mid_flush = False

    def __init__(self, fd: int, description: str, owned: bool = False, fsync: bool = False,
                 transform: Callable[[bytes], bytes] | None = None) -> None:
        """`transform`: what each line becomes as it is written (a dead letter's raw bytes)."""
        widen_pipe(fd)
        self._transform = transform
        self._cut = False
        self.fd = fd
        self.description = description
        self._owned = owned
        self._fsync = fsync
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        if self._transform is not None:
            lines = [self._transform(line) for line in lines]
        data = b"\n".join(lines)
        self._parts += (data, b"\n")      # the last newline written beside it, not copied onto it
        self._size += len(data) + 1
        if self._size >= CHUNK:
            self.flush()

    def flush(self, within: float | None = None) -> None:
        if not self._parts:
            return
        parts = self._parts if len(self._parts) <= MAX_PARTS else [b"".join(self._parts)]
        self._parts, self._size = [], 0
        if self._cut:       # appended after a cut line, a line would be spoilt as well
            return
        self._cut = True    # until every byte is out: a write a second signal gave up ends the stream
        try:
            write_all(self.fd, parts)
        except BrokenPipeError:
            raise OutputClosed() from None
        except OSError as exc:
            raise TransportError(f"cannot write {self.description}: {exc.strerror}") from None
        self._cut = False
        if self._fsync:
            os.fsync(self.fd)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._owned:
                os.close(self.fd)
