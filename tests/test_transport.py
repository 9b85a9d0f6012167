"""Reading lines from a descriptor in chunks: boundaries, caps, blank lines."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest

from evtool.transports import stdio
from evtool.transports.stdio import F_SETPIPE_SZ, FdSink, FdSource


def read_all(data: bytes, cap: int = 100, chunk: int = 7, monkeypatch=None) -> list[bytes]:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    monkeypatch.setattr(stdio, "CHUNK", chunk)
    src = FdSource(r, cap, "test", owned=True)
    got: list[bytes] = []
    while (batch := src.read()) is not None:
        assert batch.lines, "an empty batch means idle, never 'no complete line yet'"
        got += batch.lines
    src.close()
    return got


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096])
def test_lines_split_across_chunks(monkeypatch, chunk) -> None:
    data = b'{"a":1}\n{"b":22}\r\n\n   \n{"c":333}'
    assert read_all(data, chunk=chunk, monkeypatch=monkeypatch) == [
        b'{"a":1}', b'{"b":22}', b"   ", b'{"c":333}']


@pytest.mark.parametrize("chunk", [1, 5, 50, 4096])
def test_long_lines_are_cut_while_reading(monkeypatch, chunk) -> None:
    data = b"x" * 30 + b"\n" + b"y" * 5 + b"\n" + b"z" * 25
    got = read_all(data, cap=10, chunk=chunk, monkeypatch=monkeypatch)
    assert got == [b"x" * 11, b"y" * 5, b"z" * 11]


def test_idle_timeout_gives_an_empty_batch() -> None:
    r, w = os.pipe()
    src = FdSource(r, 100, "test", owned=True)
    assert src.read(timeout=0.05).lines == []
    os.write(w, b"a\n")
    assert src.read(timeout=1).lines == [b"a"]
    os.close(w)
    assert src.read(timeout=1) is None
    src.close()


def test_a_sink_writes_every_line_in_order_however_the_pipe_takes_them(monkeypatch) -> None:
    """Writes that fill the pipe many times over, in more pieces than one flush hands the kernel,
    arrive whole and in order when the kernel takes a few hundred bytes per call (as a signal
    leaves a write) and the reader drains the pipe in small reads."""
    real_writev = os.writev

    def short_writev(fd: int, views: list[memoryview]) -> int:
        return real_writev(fd, [b"".join(bytes(v[:777]) for v in views)[:777]])

    monkeypatch.setattr(os, "writev", short_writev)
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    got = bytearray()

    def drain() -> None:
        while part := os.read(r, 1000):
            got.extend(part)

    reader = threading.Thread(target=drain)
    reader.start()
    sink = FdSink(w, "test", owned=True)
    want = []
    for n in range(300):
        lines = [b"%d-%d" % (n, k) * (k + 1) for k in range(n % 7 + 1)]
        want += lines
        sink.write(lines)
        if n % 100 == 99:
            sink.flush()
    sink.write([b"x" * 300_000])
    sink.close()
    reader.join(timeout=60)
    os.close(r)
    assert bytes(got) == b"".join(line + b"\n" for line in [*want, b"x" * 300_000])


def test_sink_writes_newline_terminated_lines() -> None:
    r, w = os.pipe()
    sink = FdSink(w, "test", owned=True)
    sink.write([b"a", b"b"])
    sink.write([])
    sink.close()
    assert os.read(r, 100) == b"a\nb\n"
