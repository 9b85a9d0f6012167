"""The console entry point: hide credentials from `ps` before anything heavy is imported."""

from __future__ import annotations

import sys


def hide_secrets_from_title(argv: list[str]) -> None:
    """A password in any URL or password= on the command line would show in `ps`: redact it."""
    from evtool.core.secrets import redact

    shown = [redact(arg) for arg in argv]
    if shown == argv:
        return
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(" ".join(["evtool", *shown[1:]]))


def main() -> None:
    hide_secrets_from_title(sys.argv)
    from evtool.cli import main as run

    run()
