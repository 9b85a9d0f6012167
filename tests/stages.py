"""evtool stages run as programs on the broker, for the broker tests: each one's stderr kept in a
file with the wall-clock time of every line, so that a failure can be read as one timeline."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import orjson

from tests.conftest import evtool_cmd


def stamp() -> bytes:
    """The wall-clock time a line of a timeline starts with (HH:MM:SS.mmm)."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)).encode() + b".%03d " % int(now % 1 * 1000)


class Stage:
    """One evtool process on the broker, restartable, its stderr kept in a file, time-stamped."""

    def __init__(self, tmp: Path, name: str, *args: str, env: dict) -> None:
        self.args, self.env, self.log = args, env, tmp / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self._copier: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(evtool_cmd(*self.args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        self._copier = threading.Thread(target=self._copy, args=(self.proc.stderr,), daemon=True)
        self._copier.start()

    def _copy(self, stream: IO[bytes]) -> None:
        with stream, open(self.log, "ab") as log:
            for line in stream:
                log.write(stamp() + line)
                log.flush()

    def wait(self, timeout: float) -> int:
        """The exit status, once every line it wrote is in its log."""
        status = self.proc.wait(timeout=timeout)
        if self._copier is not None:
            self._copier.join(timeout=10)
        return status

    def kill(self) -> None:
        self.proc.kill()
        self.wait(60)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(60)


class Timeline:
    """What a test did to the broker, and when, beside its stages' logs."""

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "test.log"

    def __call__(self, what: str) -> None:
        with open(self.path, "ab") as log:
            log.write(stamp() + what.encode() + b"\n")


def evidence(tmp: Path, limit: int = 60) -> str:
    """Every log of the test's directory merged in time order (the last `limit` lines of each
    file at most), and its dead-letter files in brief, for a failing assertion to show."""
    lines: list[str] = []
    for log in sorted(tmp.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines()[-limit:]:
            lines.append(f"{line[:13]}{log.stem:>10}: {line[13:]}")
    return "\n" + "\n".join(sorted(lines)) + "".join(letters(p) for p in sorted(tmp.glob("*.ndjson")))


def letters(path: Path) -> str:
    """A dead-letter file in brief: how many of each reason, and the first and last one's error."""
    by_reason: dict[str, list[str]] = {}
    for line in path.read_bytes().splitlines():
        letter = orjson.loads(line)
        by_reason.setdefault(str(letter.get("reason")), []).append(str(letter.get("error")))
    return "".join(f"\n{path.name}: {len(errors)} {reason}, first: {errors[0]}; last: {errors[-1]}"
                   for reason, errors in by_reason.items())
