"""The shipped JSON Schemas and the loader for a user's --schema-dir."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

ENVELOPE = "envelope"


def _read(text: str, where: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: a JSON Schema must be an object")
    return schema


def builtin_schemas() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The envelope schema and the payload schema of each built-in source."""
    folder = resources.files(__name__)
    envelope: dict[str, Any] = {}
    payloads: dict[str, dict[str, Any]] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".json"):
            continue
        name = entry.name[: -len(".json")]
        schema = _read(entry.read_text("utf-8"), entry.name)
        if name == ENVELOPE:
            envelope = schema
        else:
            payloads[name] = schema
    return envelope, payloads


def schema_dir(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every DIR/<source>.json of a user's --schema-dir, by source."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"--schema-dir {path}: not a directory")
    found = {
        entry.name[: -len(".json")]: _read(entry.read_text("utf-8"), str(entry))
        for entry in sorted(folder.glob("*.json"))
    }
    if not found:
        raise ValueError(f"--schema-dir {path}: no <source>.json files in it")
    return found
