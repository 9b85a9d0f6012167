"""Event validation against the envelope schema and one payload schema per source."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import fastjsonschema
import orjson

from evtool.core.fastpath import fast_accept
from evtool.core.model import REGIONS
from evtool.core.records import deadletter, reject_unparsable
from evtool.core.stats import Stats

Check = Callable[..., Any]
STAGE = "validate"


def compile_schema(schema: dict[str, Any], what: str) -> Check:
    """Compile once with fastjsonschema; a broken schema is a clear usage error, not a traceback."""
    try:
        return fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ValueError(f"{what}: invalid JSON Schema ({exc})") from None


class EventValidator:
    """Says why an event breaks the contract, or None when it is valid."""

    def __init__(
        self,
        envelope: dict[str, Any],
        payloads: dict[str, dict[str, Any]],
        regions: Iterable[str] = REGIONS,
        shipped_sources: Iterable[str] = (),
    ) -> None:
        """`shipped_sources`: sources whose payload schema is the shipped one (fast accepted)."""
        regions = list(regions)
        envelope = copy.deepcopy(envelope)
        envelope["properties"]["region"]["enum"] = regions
        self.accept = fast_accept(regions, shipped_sources)
        self._envelope = compile_schema(envelope, "envelope schema")
        self._payloads = {
            source: compile_schema(schema, f"schema of {source}")
            for source, schema in payloads.items()
        }

    @property
    def sources(self) -> list[str]:
        return sorted(self._payloads)

    def error(self, event: Any) -> str | None:
        if self.accept(event):
            return None
        return self.slow_error(event)

    def slow_error(self, event: Any) -> str | None:
        """The compiled schemas' verdict and, for an invalid event, what is wrong."""
        if not isinstance(event, dict):
            return f"an event must be a JSON object, not {_json_type(event)}"
        try:
            self._envelope(event)
            source = event["source"]
            check = self._payloads.get(source)
            if check is None:
                known = ", ".join(self.sources)
                return f"source {source!r} is not one of the known sources ({known})"
            check(event["payload"], name_prefix="payload")
        except fastjsonschema.JsonSchemaValueException as exc:
            return _describe(exc)
        return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array"}.get(type(value), type(value).__name__)


def _describe(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """fastjsonschema's message with its `data.` prefix dropped and the rule named."""
    message = exc.message
    if exc.rule == "const" and isinstance(exc.definition, dict):
        message = f"{exc.name} must be {orjson.dumps(exc.definition.get('const')).decode()}"
    if message.startswith("data."):
        message = message[len("data."):]
    elif message.startswith("data "):
        message = "event " + message[len("data "):]
    return f"{message} (rule: {exc.rule})" if exc.rule else message


class ValidateStage:
    """Valid events pass byte for byte; invalid lines become dead letters; derived records pass."""

    def __init__(self, validator: EventValidator, stats: Stats, max_line_bytes: int) -> None:
        self.validator = validator
        self.stats = stats
        self.max_line_bytes = max_line_bytes

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None:
        loads, accept = orjson.loads, self.validator.accept
        error_of = self.validator.slow_error
        stats = self.stats
        valid = 0
        stats.in_ += len(lines)
        for line in lines:
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                rejected = reject_unparsable(STAGE, line, exc, stats)
                if rejected is not None:
                    dead.append(rejected)
                continue
            if accept(obj):
                valid += 1
                out.append(line)
                continue
            if type(obj) is dict and "kind" in obj:
                out.append(line)
                continue
            problem = error_of(obj)
            if problem is None:
                valid += 1
                out.append(line)
            else:
                stats.add_dead("schema")
                eid = obj.get("event_id") if type(obj) is dict else None
                dead.append(deadletter(STAGE, "schema", problem, line, eid))
        stats.events += valid

    def idle(self, out: list[bytes], dead: list[bytes]) -> None:
        """Nothing is held between batches."""

    def finish(self, out: list[bytes], dead: list[bytes]) -> None:
        """Nothing is held between batches."""
