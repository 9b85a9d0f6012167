"""Where a stage's side is: its -i/-o SPEC, and what the broker needs to make a default topology."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from evtool.core.roles import Roles
from evtool.core.wire import Topology, Wire


class Side(str, Enum):
    """Which end of a stage: what it reads, what it writes, where its dead letters go."""

    IN = "in"
    OUT = "out"
    DEAD = "dead"


@dataclass(frozen=True)
class Endpoint:
    """What a stage needs to open its sides: the SPEC, and for the broker its default topology."""

    spec: str
    amqp_url: str = ""
    role: Side = Side.IN
    stage: str = ""
    prefetch: int = 5000
    connect_timeout: float = 30.0
    partitions: int = 1
    partition: int = 0
    wire: Wire = field(default_factory=lambda: Wire({}, Topology()))   # what 'amqp' means: the pack's
    files: tuple[str, ...] = ()            # input files read one after another (FILE... arguments)
    roles: Roles = field(default_factory=Roles)     # where events keep source, id and region
    raw_body: bool = False                 # a dead-letter side that sends the rejected bytes as they came
    upstream_grace: bool = False           # a restored input is not quiet while upstream reconnects
