"""The failure every stage ends the same way on: an end it reads or writes (a transport, the
audit database) cannot be used, so the stage says why in one line and exits 1. Its own module,
so that the runtime catches it without importing every end."""


class EndFailed(Exception):
    """An input, output or database failed for good (after its retries)."""
