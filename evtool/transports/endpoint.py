"""Where a stage's side is: its -i/-o SPEC, and what the broker needs to make a default topology."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """What a stage needs to open its sides: the SPEC, and for the broker its default topology."""

    spec: str
    amqp_url: str = ""
    role: str = ""
    stage: str = ""
    prefetch: int = 5000
    connect_timeout: float = 30.0
    partitions: int = 1
    partition: int = 0
    wire: str = "evtool"                   # whose default topology 'amqp' means (a pack's wire)
    files: tuple[str, ...] = ()            # input files read one after another (FILE... arguments)
