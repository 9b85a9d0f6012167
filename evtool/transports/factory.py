"""Turns an -i/-o SPEC (`-`, a path, `amqp`, an amqp:// URL) into a Source or Sink."""

from __future__ import annotations

import os

from evtool.core.records import raw_body
from evtool.transports.base import Sink, Source, TransportError
from evtool.transports.endpoint import Endpoint
from evtool.transports.stdio import ChainSource, FdSink, FdSource

STDIO = "-"


def is_amqp(spec: str) -> bool:
    return spec == "amqp" or is_amqp_url(spec)


def is_amqp_url(spec: str) -> bool:
    """An amqp:// or amqps:// URL (a scheme is case-insensitive: AMQP:// too)."""
    return spec[:8].lower().startswith(("amqp://", "amqps://"))


def broker_of(end: Endpoint) -> str:
    """The broker URL (with its vhost) an amqp endpoint talks to: its own URL, or --amqp-url."""
    if is_amqp_url(end.spec):
        from evtool.transports.amqp.topology import connection_url

        return connection_url(end.spec)
    return end.amqp_url


def open_source(end: Endpoint, max_line_bytes: int) -> Source:
    if is_amqp(end.spec):
        from evtool.transports.amqp import open_amqp_source

        return open_amqp_source(end, max_line_bytes)
    if end.spec == STDIO:
        return FdSource(0, max_line_bytes, "standard input")
    if len(end.files) > 1:
        sources: list[FdSource] = []
        try:
            for path in end.files:
                sources.append(_file_source(path, max_line_bytes))
        except TransportError:
            for source in sources:
                source.close()
            raise
        return ChainSource(sources)
    return _file_source(end.spec, max_line_bytes)


def _file_source(path: str, max_line_bytes: int) -> FdSource:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise TransportError(f"cannot open {path}: {exc.strerror}") from None
    return FdSource(fd, max_line_bytes, path, owned=True)


def open_sink(end: Endpoint) -> Sink:
    if is_amqp(end.spec):
        from evtool.transports.amqp import open_amqp_sink

        return open_amqp_sink(end)
    transform = _raw_line if end.raw_body else None
    if end.spec == STDIO:
        return FdSink(1, "standard output", transform=transform)
    try:
        fd = os.open(end.spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise TransportError(f"cannot open {end.spec} for writing: {exc.strerror}") from None
    return FdSink(fd, end.spec, owned=True, transform=transform)


def _raw_line(letter: bytes) -> bytes:
    return raw_body(letter)[0]
