"""The shipped JSON Schemas (packs, derived records) and the loaders for a user's packs and --schema-dir."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from evtool.core.pack import Pack, PackError, check_schema, make_pack
from evtool.core.wire import WireError
from evtool.core.wirespec import check_format

# the package is a folder of files (importlib.resources cost every stage 3 ms of imports)
HERE = Path(__file__).resolve().parent
DEFAULT_PACK = "evtool"
DERIVED_KINDS = ("window", "metric", "alert", "deadletter")


def _read(entry: Path, where: str) -> Any:
    try:
        text = entry.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(f"{where}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError as exc:
        raise PackError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise PackError(f"{where}: nests too deep to read") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _packs_root() -> Path:
    return HERE / "packs"


def builtin_packs() -> list[str]:
    """Names of the packs shipped in the package."""
    return sorted(e.name for e in _packs_root().iterdir() if e.is_dir() and not e.name.startswith("_"))


def load_pack(spec: str | None = None) -> Pack:
    """A built-in pack by name, or a pack folder by path; a PackError names what is wrong."""
    spec = spec or DEFAULT_PACK
    if spec in builtin_packs():
        return _load(_packs_root().joinpath(spec), f"pack {spec}: ", builtin=True)
    folder = Path(spec)
    if not folder.is_dir():
        known = ", ".join(builtin_packs())
        raise PackError(f"--pack {spec}: neither a built-in pack ({known}) nor a directory")
    return _load(folder, f"{folder}/", builtin=False)


def _load(folder: Path, where: str, builtin: bool) -> Pack:
    for needed in ("pack.json", "envelope.json"):
        path = folder.joinpath(needed)
        if path.exists() and not path.resolve().is_relative_to(folder.resolve()):
            raise PackError(f"{where}{needed}: leads out of the pack (a link to {path.resolve()})")
        if not path.is_file() and needed == "pack.json":
            raise PackError(f"{where}{needed}: missing (a pack holds pack.json, envelope.json "
                            "and payloads/<source>.json)")
    meta = _read(folder.joinpath("pack.json"), f"{where}pack.json")
    # a pack whose payload is the whole event may leave the envelope out
    fields = meta.get("fields") if isinstance(meta, dict) else None
    whole = isinstance(fields, dict) and fields.get("payload") == ""
    if folder.joinpath("envelope.json").is_file() or not whole:
        if not folder.joinpath("envelope.json").is_file():
            raise PackError(f"{where}envelope.json: missing (a pack holds pack.json, envelope.json "
                            "and payloads/<source>.json)")
        envelope = _read(folder.joinpath("envelope.json"), f"{where}envelope.json")
    else:
        envelope = {"type": "object"}
    payload_dir = folder.joinpath("payloads")
    payloads: dict[str, Any] = {}
    if payload_dir.is_dir():
        for entry in sorted(payload_dir.iterdir(), key=lambda e: e.name):
            if isinstance(entry, Path) and isinstance(folder, Path) and \
                    not entry.resolve().is_relative_to(folder.resolve()):
                raise PackError(f"{where}payloads/{entry.name}: leads out of the pack (a link to "
                                f"{entry.resolve()}); a pack is the files in its folder")
            if entry.name.endswith(".json") and entry.is_file():
                name = entry.name[: -len(".json")]
                payloads[name] = _read(entry, f"{where}payloads/{entry.name}")
    return make_pack(meta, envelope, payloads, where, builtin, _wire_doc(folder, where, builtin))


def _wire_doc(folder: Path, where: str, builtin: bool
              ) -> tuple[Any, dict[str, Any] | None, str]:
    """The pack's wire.json over the default pack's: what a pack leaves out of its broker side
    (a whole top-level key) is evtool's own (contract §4). A user's file is checked here,
    against the format; the shipped ones are held to it by the tests."""
    entry = folder.joinpath("wire.json")
    if isinstance(entry, Path) and isinstance(folder, Path) and entry.exists() and \
            not entry.resolve().is_relative_to(folder.resolve()):
        raise PackError(f"{where}wire.json: leads out of the pack (a link to {entry.resolve()})")
    default, shown = _default_wire(), f"pack {DEFAULT_PACK}: wire.json"
    if not entry.is_file():
        return default, None, shown            # shipped, and held to the format by the tests
    own = _read(entry, f"{where}wire.json")
    if not isinstance(own, dict):
        raise PackError(f"{where}wire.json: must be a JSON object")
    doc, shown = {**default, **own}, f"{where}wire.json"
    if not builtin:
        _check_wire(doc, shown)
    return doc, None, shown


def _check_wire(doc: dict[str, Any], where: str) -> None:
    """A user's wire.json held to its format. Compiling the format costs a stage 55 ms at start,
    so a document that passed (the same one, against the same format) is remembered in the
    user's cache and not checked again; one that fails is never remembered."""
    key = hashlib.sha256(json.dumps([wire_format(), doc], sort_keys=True).encode()).hexdigest()
    remembered = _verdicts()
    passed = remembered / key if remembered is not None else None
    if passed is not None and passed.is_file():
        return
    try:
        check_format(doc, wire_format(), where)
    except WireError as exc:
        raise PackError(str(exc)) from None
    if passed is not None:
        with contextlib.suppress(OSError):
            passed.parent.mkdir(parents=True, exist_ok=True)
            passed.touch()


def _verdicts() -> Path | None:
    """Where passed wire.json documents are remembered ($XDG_CACHE_HOME/evtool), if anywhere."""
    base = os.environ.get("XDG_CACHE_HOME") or os.environ.get("HOME")
    if not base:
        return None
    root = Path(base) if os.environ.get("XDG_CACHE_HOME") else Path(base) / ".cache"
    return root / "evtool" / "wire-passed"


@cache
def _default_wire() -> dict[str, Any]:
    """The default pack's wire.json, read once: every pack's broker side starts from it."""
    found: dict[str, Any] = _read(_packs_root().joinpath(DEFAULT_PACK).joinpath("wire.json"),
                                  f"pack {DEFAULT_PACK}: wire.json")
    return found


@cache
def wire_format() -> dict[str, Any]:
    """The JSON Schema of wire.json (shipped, and printed by --show-pack's reader)."""
    found: dict[str, Any] = _read(HERE / "wire" / "wire.schema.json",
                                  "wire.schema.json")
    return found


def schema_dir(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every DIR/<source>.json of a user's --schema-dir, by source."""
    folder = Path(path)
    if not folder.is_dir():
        raise PackError(f"--schema-dir {path}: not a directory")
    found: dict[str, dict[str, Any]] = {}
    for entry in sorted(folder.glob("*.json")):
        if not entry.is_file():
            raise PackError(f"--schema-dir {entry}: not a file")
        schema = _read(entry, str(entry))
        check_schema(schema, str(entry))
        found[entry.name[: -len(".json")]] = schema
    if not found:
        raise PackError(f"--schema-dir {path}: no <source>.json files in it")
    return found


def derived_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each derived record kind evtool knows."""
    folder = HERE / "records"
    return {kind: _read(folder.joinpath(f"{kind}.json"), f"records/{kind}.json") for kind in DERIVED_KINDS}
