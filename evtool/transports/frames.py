"""Length-prefixed frames over a pipe: how evtool's stages talk to the helper processes they
start (audit's SQLite writer, aggregate's read-ahead). A frame is an 8-byte little-endian
length and that many bytes."""

from __future__ import annotations

import os
import struct
from typing import IO

HEAD = struct.Struct("<Q")


def send(stream: IO[bytes], payload: bytes) -> None:
    """Written to the descriptor with a loop of our own: a stop (Ctrl-Z, a profiler) cuts a large
    pipe write short, and CPython's buffered writer then put bytes out of order in the pipe."""
    stream.flush()
    fd = stream.fileno()
    for part in (HEAD.pack(len(payload)), payload):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


def receive(stream: IO[bytes]) -> bytes | None:
    """One frame, or None at the end of the stream (the other side closed it, or died)."""
    head = stream.read(HEAD.size)
    if len(head) < HEAD.size:
        return None
    size = HEAD.unpack(head)[0]
    payload = stream.read(size)
    return payload if len(payload) == size else None


def take(buffer: bytearray) -> bytes | None:
    """The first whole frame's payload, removed from `buffer`; None while it is incomplete."""
    if len(buffer) < HEAD.size:
        return None
    end = HEAD.size + HEAD.unpack_from(buffer)[0]
    if len(buffer) < end:
        return None
    payload = bytes(buffer[HEAD.size:end])
    del buffer[:end]
    return payload
