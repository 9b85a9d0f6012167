"""Event validation against a pack: its envelope schema and one payload schema per source."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import orjson

from evtool.core.checks import Check, Invalid, compile_schema, describe, json_type
from evtool.core.derived import DerivedChecker
from evtool.core.linematch import line_matcher
from evtool.core.pack import Pack
from evtool.core.quickcheck import Pred, quick
from evtool.core.records import deadletter, parse, reject_unparsable
from evtool.core.roles import RoleError
from evtool.core.stats import Stats

STAGE = "validate"


class EventValidator:
    """Says why an event breaks its pack's rules, or None when it is valid."""

    def __init__(self, pack: Pack) -> None:
        self.pack = pack
        where = pack.where
        self._envelope = compile_schema(pack.envelope, f"{where}envelope.json")
        self._payloads: dict[str, Check] = {
            source: compile_schema(schema, f"{where}payloads/{source}.json")
            for source, schema in pack.payloads.items()
        }
        self.roles = roles = pack.roles
        payload = roles.payload.lstrip("/").replace("/", ".")
        self._payload_name = payload or "data"

    @cached_property
    def accept(self) -> Pred:
        """The "certainly valid" predicate over parsed events (compiled when first asked: gen
        judges its samples by the schemas alone)."""
        return fast_accept(self.pack)

    @cached_property
    def line_match(self) -> Callable[[bytes], object] | None:
        """Whole lines laid out as gen writes them, judged without parsing (any pack it mirrors)."""
        return line_matcher(self.pack)

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
            return f"an event must be a JSON object, not {json_type(event)}"
        roles = self.roles
        try:
            self._envelope(event)
            source = roles.source_of(event)
            check = self._payloads.get(source)
            if check is None and roles.unknown_sources != "accept":
                known = ", ".join(self.sources)
                return f"{roles.name('source')} {source!r} is not one of the known sources ({known})"
            if check is not None:
                check(roles.payload_of(event), name_prefix=self._payload_name)
        except Invalid as exc:
            return describe(exc)
        except RoleError as exc:
            return str(exc)
        return None


def _never(_event: Any) -> bool:
    return False


def fast_accept(pack: Pack) -> Pred:
    """True only for events certainly valid, compiled from the pack's schemas; anything it does
    not accept goes to the compiled schemas, which decide and explain."""
    envelope = quick(pack.envelope, pack.envelope)
    payloads = {s: p for s, p in ((s, quick(v, v)) for s, v in pack.payloads.items()) if p}
    if envelope is None or not payloads:
        return _never
    roles = pack.roles
    if roles.is_default:
        def accept(ev: Any) -> bool:
            if not envelope(ev):
                return False
            source = ev.get("source")
            check = payloads.get(source) if type(source) is str else None
            return check is not None and check(ev.get("payload"))
        return accept

    def accept_by_roles(ev: Any) -> bool:
        if not envelope(ev):
            return False
        try:
            check = payloads.get(roles.source_of(ev))
            return check is not None and check(roles.payload_of(ev))
        except RoleError:
            return False
    return accept_by_roles


class ValidateStage:
    """Valid events pass byte for byte; invalid lines become dead letters; derived records pass."""

    def __init__(self, validator: EventValidator, derived: DerivedChecker, stats: Stats,
                 max_line_bytes: int, wall_clock: Callable[[], str] | None = None) -> None:
        """`wall_clock`: what stamps a dead letter where the pack's wire has it carry the time."""
        self.validator = validator
        self.derived = derived
        self.wire = wire = validator.pack.wire
        self.shapes = bool(wire.records.get("deadletter"))
        self.wall_clock = wall_clock
        self.stats = stats
        self.max_line_bytes = max_line_bytes
        self.unsafe_batches = 0                 # its output is sent with its batch: all safe
        self.newest_event_time: float | None = None

    def still_open(self, lines: list[bytes]) -> list[bytes]:
        """Nothing: every line read was sent with its batch."""
        return []

    def process(self, lines: list[bytes], out: list[bytes], dead: list[bytes]) -> None:
        stats = self.stats
        stats.in_ += len(lines)
        match = self.validator.line_match
        # every line matched in one C loop: a batch of lines gen could have written passes whole
        verdicts = list(map(match, lines)) if match is not None else [None] * len(lines)
        if match is not None and all(verdicts):
            out.extend(lines)
            stats.events += len(lines)
            return
        loads, accept = parse, self.validator.accept
        error_of = self.validator.slow_error
        valid = 0
        for line, matched in zip(lines, verdicts, strict=True):
            if matched:
                valid += 1
                out.append(line)
                continue
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                rejected = reject_unparsable(STAGE, line, exc, stats)
                if rejected is not None:
                    dead.append(self._shaped(rejected))
                continue
            if accept(obj):
                valid += 1
                out.append(line)
                continue
            derived, problem = self._derived(obj) if type(obj) is dict else (False, None)
            if derived:
                if problem is None:
                    out.append(line)
                else:
                    stats.add_dead("schema")
                    dead.append(self._shaped(deadletter(STAGE, "schema", problem, line)))
                continue
            problem = error_of(obj)
            if problem is None:
                valid += 1
                out.append(line)
            else:
                stats.add_dead("schema")
                eid = self.validator.roles.event_id_or_none(obj) if type(obj) is dict else None
                dead.append(self._shaped(deadletter(STAGE, "schema", problem, line, eid)))
        stats.events += valid

    def _derived(self, obj: dict[str, Any]) -> tuple[bool, str | None]:
        """(whether `obj` is a derived record, what is wrong with it): by evtool's `kind`, or in
        one of the pack's foreign shapes (which the wire checks as it reads them)."""
        if self.validator.roles.is_derived(obj):
            return True, self.derived.problem(obj)
        try:
            return self.wire.as_evtool(obj) is not None, None
        except ValueError as exc:
            return True, str(exc)

    def _shaped(self, letter: bytes) -> bytes:
        """The fields the pack's wire has a dead letter carry beside evtool's own."""
        if not self.shapes:
            return letter
        record = orjson.loads(letter)
        record.update(self.wire.extra("deadletter", record, self.wall_clock))
        return orjson.dumps(record)

    def idle(self, out: list[bytes], dead: list[bytes]) -> None:
        """Nothing is held between batches."""

    def finish(self, out: list[bytes], dead: list[bytes]) -> None:
        """Nothing is held between batches."""
