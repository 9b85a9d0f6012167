"""Scale out: competing validates, partitioned aggregates and audits sharing one PostgreSQL give
the same events and metrics as one process per stage over pipes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from evtool.transports.amqp.topology import partition_queue
from tests.conftest import PG, START, consuming, evtool_cmd, gen_lines, psql, records, run
from tests.stages import Stage

pytestmark = pytest.mark.broker
GEN = ["--count", "100000", "--seed", "31", "--start", START, "--duplicates", "0.02", "--rate", "10000"]
LATENESS = "600"      # three validates interleave their batches: order is kept to within a few 100 s
# The whole input spans 10 s of event time, so windows close by the idle flush alone: a busy
# machine stalls a stage for seconds (2 s once closed windows midway, the rest of them late).
IDLE_FLUSH = "15"


@pytest.fixture
def pgdb(vhost, pg_database):
    """A database of this test's own on the local PostgreSQL, and a broker vhost."""
    subprocess.run(["rabbitmq-plugins", "-q", "enable", "rabbitmq_consistent_hash_exchange"],
                   capture_output=True, check=True, timeout=120)
    return vhost, pg_database


def single_process_metrics() -> dict[str, int]:
    validated = run(["validate", "-q"], stdin=gen_lines(100000, 31, *GEN[4:])).stdout
    out = run(["aggregate", "-q", "--lateness", LATENESS], stdin=validated).stdout
    return {r["metric_id"]: r["total"] for r in records(out) if r["kind"] == "metric"}


def start_cluster(tmp, url: str, db: str) -> dict[str, Stage]:
    env = {**os.environ, "EVTOOL_AMQP_URL": url, "EVTOOL_VALIDATE_PARTITIONS": "2",
           "EVTOOL_AGGREGATE_PARTITIONS": "2"}
    dsn = f"{PG}/{db}"
    stages = {f"validate{i}": Stage(tmp, f"validate{i}", "validate", "-i", "amqp", "-o", "amqp",
                                    "--prefetch", "500", env=env) for i in range(3)}
    for k in range(2):
        stages[f"aggregate{k}"] = Stage(tmp, f"aggregate{k}", "aggregate", "-i", "amqp", "-o", "amqp",
                                        "--partition", str(k), "--lateness", LATENESS,
                                        "--idle-flush", IDLE_FLUSH, env=env)
    for i in range(2):
        stages[f"audit{i}"] = Stage(tmp, f"audit{i}", "audit", "-i", "amqp", "--db", dsn, env=env)
    consuming(url, {"validator_queue": 3, partition_queue(2, 0): 1, partition_queue(2, 1): 1,
                    "audit_queue": 2})
    return stages


def wait_for_metrics(db: str, want: dict[str, int], timeout: float) -> dict[str, int]:
    deadline, got = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        rows = psql(db, "SELECT metric_id, total FROM metrics_out").splitlines()
        got = {k: int(v) for k, v in (line.split("|") for line in rows if line)}
        if got == want:
            break
        time.sleep(1)
    return got


def stop_all(stages: dict[str, Stage], tmp) -> None:
    for stage in stages.values():
        stage.proc.send_signal(signal.SIGTERM)
    for name, stage in stages.items():
        assert stage.wait(60) == 143, (tmp / f"{name}.log").read_text()
        assert "Traceback" not in (tmp / f"{name}.log").read_text()


def check(db: str, want: dict[str, int]) -> None:
    distinct = {r["event_id"] for r in records(run(["validate", "-q"],
                                                   stdin=gen_lines(100000, 31, *GEN[4:])).stdout)}
    assert int(psql(db, "SELECT count(*) FROM events_in")) == len(distinct)
    assert int(psql(db, "SELECT count(*) FROM trace")) == sum(want.values())
    partitions = psql(db, "SELECT DISTINCT partition FROM windows ORDER BY 1").split()
    assert partitions == ["0", "1"]
    verify = run(["replay", "--db", f"{PG}/{db}", "--verify"])
    assert verify.returncode == 0, verify.stdout[:500]


def test_three_validates_two_partitions_two_audits_match_one_process(pgdb, tmp_path) -> None:
    url, db = pgdb
    want = single_process_metrics()
    stages = start_cluster(tmp_path, url, db)
    assert run(["gen", *GEN, "--fast", "-o", "amqp", "-q"], env={"EVTOOL_AMQP_URL": url},
               timeout=300).returncode == 0
    assert wait_for_metrics(db, want, 240) == want
    stop_all(stages, tmp_path)
    check(db, want)


def test_a_partition_killed_and_restarted_midway_changes_nothing(pgdb, tmp_path) -> None:
    url, db = pgdb
    want = single_process_metrics()
    stages = start_cluster(tmp_path, url, db)
    gen = subprocess.Popen(evtool_cmd("gen", *GEN, "-o", "amqp", "-q"),     # paced: about 10 s
                           env={**os.environ, "EVTOOL_AMQP_URL": url})
    time.sleep(5)
    stages["aggregate1"].kill()
    time.sleep(1)
    stages["aggregate1"].start()
    assert gen.wait(timeout=300) == 0
    assert wait_for_metrics(db, want, 240) == want
    stop_all(stages, tmp_path)
    check(db, want)
