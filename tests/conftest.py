from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from evtool.core.derived import DerivedChecker
from evtool.core.validation import EventValidator
from evtool.schemas import derived_schemas, load_pack

START = "2026-11-26T00:00:00Z"
# A stage a test starts without naming its own vhost connects here, a vhost that never exists,
# and fails: no test touches vhost `/`, which the broker's other users share, and none fails
# because something else uses it meanwhile.
os.environ["EVTOOL_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:5672/evtool-test-no-vhost-given"

# What a test needs, read from the fixtures it uses (and the module it lives in): the markers
# that `scripts/test.sh --fast` leaves out follow from that, never from a list kept by hand.
NEEDS = {"vhost": "broker", "pg_database": "postgres"}
MODULES = {"test_watch_page": "browser", "test_watch_screen": "tmux"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in NEEDS:
                item.add_marker(NEEDS[fixture])
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
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
    """Run one evtool command as a user would, with real pipes."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(evtool_cmd(*args), input=stdin, capture_output=True, timeout=timeout,
                          env=full_env, check=False)


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


@pytest.fixture
def vhost() -> str:
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
def pg_database() -> str:
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
