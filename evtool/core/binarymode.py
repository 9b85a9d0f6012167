"""Events sent in a binary mode (attributes in message headers, the data as the body), read as the
structured event they stand for, as a pack's wire.json says (the CloudEvents AMQP bindings)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from evtool.core.wire import Binary

STRUCTURED = "application/cloudevents"


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return value


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def structured(binary: Binary, headers: Mapping[str, Any] | None, content_type: str | None,
               body: bytes) -> bytes | None:
    """The structured event a binary-mode message stands for, or None when the message is not
    in binary mode (no header with one of the prefixes, or a structured content type)."""
    if not headers or (content_type or "").lower().startswith(STRUCTURED):
        return None
    prefixes = [(p.lower(), len(p)) for p in binary.prefixes]
    event: dict[str, Any] = {}
    for name, value in headers.items():
        lowered = name.lower()
        for prefix, size in prefixes:
            if lowered.startswith(prefix) and len(lowered) > size:
                event[lowered[size:]] = _text(value)
                break
    if not event:
        return None
    if content_type is not None and binary.content_type:
        event[binary.content_type] = content_type
    if body:
        event.update(_data(binary, content_type, body))
    return orjson.dumps(event)


def _data(binary: Binary, content_type: str | None, body: bytes) -> dict[str, Any]:
    """JSON data as a value, other text as a string, other bytes in base64."""
    if _is_json(content_type):
        try:
            return {binary.body: orjson.loads(body)}
        except orjson.JSONDecodeError:
            pass
    media = (content_type or "").lower()
    if media.startswith("text/") or _is_json(content_type) or binary.body_base64 is None:
        try:
            return {binary.body: body.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    if binary.body_base64 is None:
        return {binary.body: body.decode("latin-1")}
    return {binary.body_base64: base64.b64encode(body).decode("ascii")}
