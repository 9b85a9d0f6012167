"""Length-prefixed frames over a pipe: how evtool's stages talk to the helper processes they
start (audit's SQLite writer, aggregate's read-ahead). A frame is an 8-byte little-endian
length and that many bytes."""

from __future__ import annotations

import os
import struct
from typing import IO

from evtool.transports.stdio import write_all

HEAD = struct.Struct("<Q")


def send(stream: IO[bytes], payload: bytes) -> None:
    """Written to the descriptor with a loop of our own: a stop (Ctrl-Z, a profiler) cuts a large
    pipe write short, and CPython's buffered writer then put bytes out of order in the pipe."""
    stream.flush()
    write_all(stream.fileno(), [HEAD.pack(len(payload)), payload])


def receive(stream: IO[bytes]) -> bytes | None:
    """One frame, or None at the end of the stream (the other side closed it, or died)."""
    head = stream.read(HEAD.size)
    if len(head) < HEAD.size:
        return None
    size = HEAD.unpack(head)[0]
    payload = stream.read(size)
    return payload if len(payload) == size else None


class FrameReader:
    """Frames off a descriptor, each read straight into one reused buffer: gathering chunks and
    cutting frames out of them copied every batch of aggregate's read-ahead five times."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray(HEAD.size)
        self.reset()

    def reset(self) -> None:
        """Drop a frame half read (its writer was cut off)."""
        self._want, self._filled, self._head = HEAD.size, 0, True

    def read(self) -> memoryview | None:
        """One read toward the frame under way: its payload once whole (valid until the next
        call), None while incomplete; EOFError at the end of the stream."""
        got = os.readv(self.fd, [memoryview(self._buffer)[self._filled:self._want]])
        if got == 0:
            raise EOFError
        self._filled += got
        if self._filled < self._want:
            return None
        if self._head:
            size = HEAD.unpack_from(self._buffer)[0]
            if size > len(self._buffer):
                self._buffer = bytearray(size)
            self._want, self._filled, self._head = size, 0, False
            if size:
                return None
        payload = memoryview(self._buffer)[:self._want]
        self.reset()
        return payload
