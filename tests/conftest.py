from __future__ import annotations

import array
import contextlib
import fcntl
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pika
import pytest

from evtool.core.derived import DerivedChecker
from evtool.core.validation import EventValidator
from evtool.schemas import derived_schemas, load_pack

START = "2026-11-26T00:00:00Z"
# A stage a test starts without naming its own vhost connects here, a vhost that never exists,
# and fails: no test touches vhost `/`, which the broker's other users share, and none fails
# because something else uses it meanwhile.
os.environ["EVTOOL_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:5672/evtool-test-no-vhost-given"
# what evtool remembers between runs (a wire.json that passed its format) stays in the test run
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="evtool-test-cache-")

# What a test needs, read from the fixtures it uses (and the module it lives in): the markers
# that `scripts/test.sh --fast` leaves out follow from that, never from a list kept by hand.
NEEDS = {"vhost": "broker", "pg_database": "postgres"}
MODULES = {"test_watch_page": "browser", "test_watch_screen": "tmux"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in NEEDS:
                item.add_marker(NEEDS[fixture])
        module = item.path.stem
        if module in MODULES:
            item.add_marker(MODULES[module])


@functools.cache
def checker() -> DerivedChecker:
    """The derived-record checks every stage applies."""
    return DerivedChecker(derived_schemas())


@functools.cache
def pack_validator(pack: str = "evtool") -> EventValidator:
    return EventValidator(load_pack(pack))


def evtool_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "evtool", *args]


def run(args: Sequence[str], stdin: bytes | None = None, env: dict | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one evtool command as a user would, with real pipes: in a fork of this process that
    calls evtool's entry point (no interpreter start, no imports: a third of a second each), or,
    with EVTOOL_TEST_SPAWN=1, as a program of its own."""
    if os.environ.get("EVTOOL_TEST_SPAWN") == "1" or not hasattr(os, "fork"):
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(evtool_cmd(*args), input=stdin, capture_output=True, timeout=timeout,
                              env=full_env, check=False)
    return forked(list(args), stdin, env or {}, timeout)


def forked(args: list[str], stdin: bytes | None, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """`evtool ARGS` in a child made by fork: its fds 0, 1 and 2 are pipes, as for a program."""
    import threading

    from evtool.cli import main

    ends = [os.pipe() for _ in range(3)]         # (read, write) for stdin, stdout, stderr
    pid = os.fork()
    if pid == 0:                                 # the child: nothing of pytest's may run here
        status = 70
        try:
            for fd, (read, write) in enumerate(ends):
                os.dup2(read if fd == 0 else write, fd)
            for read, write in ends:
                os.close(read)
                os.close(write)
            sys.stdin = open(0, closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            os.environ.update(env)
            sys.argv = ["evtool", *args]
            main()
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(status)
    os.close(ends[0][0])
    os.close(ends[1][1])
    os.close(ends[2][1])
    got: dict[int, bytes] = {}

    def drain(fd: int) -> None:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        got[fd] = b"".join(chunks)
        os.close(fd)

    def feed() -> None:
        try:
            if stdin:
                view = memoryview(stdin)
                while view:
                    view = view[os.write(ends[0][1], view):]
        except BrokenPipeError:
            pass
        finally:
            os.close(ends[0][1])

    threads = [threading.Thread(target=drain, args=(ends[1][0],)),
               threading.Thread(target=drain, args=(ends[2][0],)), threading.Thread(target=feed)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise subprocess.TimeoutExpired(evtool_cmd(*args), timeout)
        time.sleep(0.002)
    for thread in threads:
        thread.join()
    code = os.waitstatus_to_exitcode(status)
    return subprocess.CompletedProcess(evtool_cmd(*args), code, got[ends[1][0]], got[ends[2][0]])


def handles_signals(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until `proc` catches SIGTERM (its SigCgt mask in /proc): a signal sent before evtool
    has its handlers ends the interpreter instead of the stage, and a busy machine may take
    seconds to get there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            mask = int(status.split("SigCgt:")[1].split()[0], 16)
        except (OSError, IndexError):
            mask = 0
        if mask & (1 << (signal.SIGTERM - 1)):
            return
        assert proc.poll() is None, "the stage ended before it caught signals"
        assert time.monotonic() < deadline, "the stage did not catch SIGTERM in time"
        time.sleep(0.01)


def pending(pipe: IO[bytes]) -> int:
    """How many bytes a pipe holds, unread (FIONREAD answers on either end)."""
    held = array.array("i", [0])
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, held)
    return held[0]


def consuming(url: str, want: dict[str, int], timeout: float = 120) -> None:
    """Wait until each queue has its consumers (0: until it exists): gen publishing before would
    find no queue."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        for queue, n in want.items():
            while True:
                try:
                    if ch.queue_declare(queue, passive=True).method.consumer_count >= n:
                        break
                except pika.exceptions.ChannelClosedByBroker:     # not declared yet
                    ch = conn.channel()
                assert time.monotonic() < deadline, f"{queue}: fewer than {n} consumers"
                time.sleep(0.05)
    finally:
        conn.close()


def pipeline(*stages: Sequence[str], timeout: float = 120,
             env: dict | None = None) -> tuple[bytes, list[bytes]]:
    """`evtool A | evtool B | ...` over OS pipes; the last stage's stdout and every stderr."""
    procs: list[subprocess.Popen] = []
    prev = None
    for stage in stages:
        proc = subprocess.Popen(evtool_cmd(*stage), stdin=prev, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        if prev is not None:
            prev.close()
        prev = proc.stdout
        procs.append(proc)
    out = procs[-1].stdout.read()
    errs = []
    for proc in procs:
        proc.wait(timeout=timeout)
        errs.append(proc.stderr.read())
        assert proc.returncode == 0, (proc.args, proc.returncode, errs[-1])
    return out, errs


def records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def gen_lines(count: int, seed: int = 1, *extra: str, start: str = START) -> bytes:
    result = run(["gen", "--count", str(count), "--seed", str(seed), "--start", start, "--fast",
                  "-q", *extra])
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def broker_reachable(host: str = "127.0.0.1", port: int = 5672) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def _listed(url: str, what: str, *columns: str) -> list[list[str]]:
    """`rabbitmqctl list_<what>` of the url's vhost, a row per line."""
    from urllib.parse import unquote, urlsplit

    out = subprocess.run(["rabbitmqctl", "-q", f"list_{what}", "-p", unquote(urlsplit(url).path[1:]),
                          *columns], check=True, capture_output=True, text=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines() if "\t" in line]


def tapped(url: str, exchange: str, timeout: float = 120) -> None:
    """Wait until a queue of a stage's own (watch's tap) is bound to `exchange`: what is published
    before passes it by."""
    deadline = time.monotonic() + timeout
    while not any(source == exchange and queue.startswith("amq.gen-")
                  for source, queue in _listed(url, "bindings", "source_name", "destination_name")):
        assert time.monotonic() < deadline, f"no queue of a stage's own is bound to {exchange}"
        time.sleep(0.1)


def drained(url: str, *queues: str, timeout: float = 120) -> None:
    """Wait until `queues` and every queue of a stage's own hold no message, ready or unacked:
    whatever was published has been taken and acked."""
    deadline = time.monotonic() + timeout
    while any(int(count) for name, count in _listed(url, "queues", "name", "messages")
              if name in queues or name.startswith("amq.gen-")):
        assert time.monotonic() < deadline, "messages still waiting"
        time.sleep(0.1)


@pytest.fixture
def vhost() -> Iterator[str]:
    """A RabbitMQ vhost of this test's own (deleted after), as an amqp URL."""
    import uuid

    if not broker_reachable():
        if os.environ.get("EVTOOL_TEST_BROKER") == "required":
            pytest.fail("EVTOOL_TEST_BROKER=required but no RabbitMQ answers on 127.0.0.1:5672")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (set EVTOOL_TEST_BROKER=required to fail instead)")
    name = f"evtool-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, timeout=120)


PG = "postgresql://postgres@127.0.0.1:5432"


def psql(db: str, sql: str) -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A database of this test's own on the local PostgreSQL (dropped after)."""
    import uuid

    try:
        psql("postgres", "SELECT 1")
    except (subprocess.CalledProcessError, FileNotFoundError):
        if os.environ.get("EVTOOL_TEST_BROKER") == "required":
            pytest.fail("no PostgreSQL on 127.0.0.1:5432")
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"evtool_test_{uuid.uuid4().hex[:10]}"
    psql("postgres", f"CREATE DATABASE {name}")
    yield name
    psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
