"""Shared memory that a batch's lines cross from aggregate's read-ahead child to the stage.

In a frame, each line was copied into the pipe by the child's write and out by the stage's read,
and made an object of its own twice by marshal: at 300k events the stage spent a tenth of its
time reading frames. Here the child writes a batch's lines, joined, where the stage has already
copied the batches before out; the frame carries only where. The stage says how far it has copied
on a pipe of its own (a write is a barrier the other process sees in order, where a counter in
the shared memory would need one), and the child reads those words before each batch, waiting for
them only while the memory holds no room.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import struct

# two of FdSource's 1 MiB reads (4 MiB was no faster, and every page counts in the stage's RSS);
# a larger batch goes in its frame
RING_BYTES = 2 << 20
WORD = struct.Struct("<Q")
Place = tuple[int, int, int, int]       # where a batch starts, its length, its lines, written after it


class Ring:
    """Both ends: made before the fork; the child keeps `put` and the stage `take`."""

    def __init__(self, size: int = RING_BYTES) -> None:
        self.memory = mmap.mmap(-1, size)           # MAP_SHARED: the child sees the same pages
        self.size = size
        self.heard, self.said = os.pipe()           # the stage writes `said`, the child reads `heard`
        os.set_blocking(self.heard, False)
        self.written = self.copied = 0

    def as_child(self) -> int:
        """The child's end of the words (to keep open); the stage's is closed here."""
        os.close(self.said)
        self.said = -1
        return self.heard

    def as_stage(self) -> None:
        os.close(self.heard)
        self.heard = -1

    def put(self, lines: list[bytes]) -> Place | None:
        """Writes the lines where the stage has copied everything out, waiting for room; None for a
        batch larger than the memory (it goes in its frame). EOFError once the stage is gone."""
        blob = b"\n".join(lines)
        size, length = self.size, len(blob)
        if length > size:
            return None
        at = self.written % size
        skip = size - at if at + length > size else 0   # a batch is never split at the end
        # the room it takes held the lap before's bytes, which the stage must have copied out;
        # what it skips at the end holds none of this lap's
        self._wait_for(min(self.written + skip + length - size, self.written))
        start = 0 if skip else at
        self.memory[start:start + length] = blob
        self.written += skip + length
        return start, length, len(lines), self.written

    def _wait_for(self, copied: int) -> None:
        """Reads the stage's words: every one waiting, and more until it has copied `copied`."""
        while True:
            with contextlib.suppress(BlockingIOError):      # all read that was written
                while words := os.read(self.heard, WORD.size * 512):    # whole words: 8-byte writes
                    self.copied = WORD.unpack_from(words, len(words) - WORD.size)[0]
                raise EOFError
            if self.copied >= copied:
                return
            select.select([self.heard], [], [])

    def take(self, place: Place) -> list[bytes]:
        """The stage's copy of a batch's lines, and word to the child that their room is free."""
        start, length, count, written = place
        blob = self.memory[start:start + length]
        with contextlib.suppress(OSError):      # a child that died reads no more words
            os.write(self.said, WORD.pack(written))
        return blob.split(b"\n") if count else []

    def close(self) -> None:
        for fd in (self.said, self.heard):
            if fd >= 0:
                os.close(fd)
        self.said = self.heard = -1
        self.memory.close()
