"""How long the broker side waits between attempts, and after an outage: kept apart from the link
(and pika) so that the command line can say it."""

from __future__ import annotations

MAX_PAUSE = 5.0                 # the longest wait between two attempts to connect or publish
# After an outage every stage comes back on its own schedule: an input restored before the stage
# upstream of it is empty, not quiet, until that stage has waited out its pause and published.
UPSTREAM_GRACE = 2 * MAX_PAUSE


def pause(attempt: int) -> float:
    """Seconds before retry number `attempt`: doubling from 0.25, at most MAX_PAUSE."""
    return min(0.25 * (1 << min(attempt, 5)), MAX_PAUSE)
