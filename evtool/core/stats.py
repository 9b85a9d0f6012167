"""Counters every stage keeps, and the one-line summary it prints at exit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    """What a stage has seen; `in_` counts input records, `out` output records."""

    in_: int = 0
    out: int = 0
    events: int = 0
    duplicates: int = 0
    late: int = 0
    unroutable: int = 0
    dead: Counter[str] = field(default_factory=Counter)

    def add_dead(self, reason: str, n: int = 1) -> None:
        self.dead[reason] += n

    def as_json(self, seconds: float) -> dict[str, object]:
        """The summary's counts for scripts (`--summary-json`)."""
        rate = (self.in_ or self.out) / seconds if seconds > 0 else 0.0
        return {"in": self.in_, "out": self.out, "dead_letters": sum(self.dead.values()),
                "dead_letters_by_reason": dict(sorted(self.dead.items())), "events": self.events,
                "duplicates": self.duplicates, "late": self.late, "unroutable": self.unroutable,
                "seconds": round(seconds, 3), "records_per_s": round(rate, 1)}

    def summary(self, seconds: float) -> str:
        """`1000 in, 980 out, 20 dead letters (schema 15, json 5), 0 duplicates, ...`."""
        total_dead = sum(self.dead.values())
        parts = [f"{self.in_} in", f"{self.out} out"]
        if self.unroutable:
            parts.append(f"{self.unroutable} dropped by the broker (no queue bound)")
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.dead.items()))
        parts.append(f"{total_dead} dead letters" + (f" ({reasons})" if reasons else ""))
        parts += [f"{self.duplicates} duplicates", f"{self.late} late"]
        rate = (self.in_ or self.out) / seconds if seconds > 0 else 0.0
        parts += [f"{seconds:.2f} s", f"{rate:,.0f} records/s"]
        return ", ".join(parts)
