"""The speed issue's table: every stage of every pack beside the tuned floor over the same pack's
lines, measured on a quiet machine and again beside a busy neighbour (scripts/load.py driving
a pipeline over the broker), from one invocation of scripts/bench.sh."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

Case = tuple[Callable[[], float], int]
TARGETS = {"gen": 0.5, "validate": 0.8, "aggregate": 0.5}
STAGES = ("gen", "validate", "aggregate")
PIPE_LABEL = "gen \\| validate \\| aggregate"          # escaped for a Markdown table


def floor_name(pack: str) -> str:
    return f"floor, tuned --pack {Path(pack).name}"


def stage_name(stage: str, pack: str) -> str:
    return f"{stage} --pack {Path(pack).name}"


def pack_cases(names: list[str], files: dict[str, Path], n: int, evtool: str, floor: str,
               sh: Callable[..., float], tuned: dict[str, str], start: str) -> dict[str, Case]:
    """For each pack: the tuned floor over its events, then gen, validate and aggregate."""
    cases: dict[str, Case] = {}
    for pack in names:
        made = files[pack]
        gen = f"{evtool} gen --pack {pack} --count {n} --seed 1 --start {start} --fast -q"
        validate = f"{evtool} validate --pack {pack} -q"
        aggregate = f"{evtool} aggregate --pack {pack} -q"
        cases[floor_name(pack)] = (lambda m=made: sh(floor, m, tuned), n)
        cases[stage_name("gen", pack)] = (lambda g=gen: sh(g), n)
        cases[stage_name("validate", pack)] = (lambda v=validate, m=made: sh(v, m), n)
        cases[stage_name("aggregate", pack)] = (lambda a=aggregate, m=made: sh(a, m), n)
    return cases


@contextlib.contextmanager
def busy_neighbour(root: Path, rate: int) -> Iterator[None]:
    """scripts/load.py in the background, events flowing through the broker while the body runs;
    stopped (its stages and vhost with it) however the body ends."""
    load = subprocess.Popen([sys.executable, str(root / "scripts" / "load.py"), "--background",
                             "--rate", str(rate), "--duration", "86400"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert load.stdout is not None
        for line in load.stdout:            # until the load says events reach its audit
            print(f"  {line.rstrip()}", flush=True)
            if "flowing" in line:
                break
        else:
            raise RuntimeError(f"the busy neighbour ended before it ran (exit {load.wait()})")
        yield
    finally:
        if load.poll() is None:
            load.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            load.wait(timeout=120)
        if load.poll() is None:
            os.kill(load.pid, signal.SIGKILL)
            load.wait()


Row = tuple[str, str, str, Callable[[dict[str, dict]], float | None], Callable[[float], bool]]


def rows(names: list[str], pipe: str, tuned: str, audit: str, naive: str) -> list[Row]:
    """(stage, pack, target, figure from one pass's results, whether the figure meets it)."""

    def ratio(name: str, base: str) -> Callable[[dict[str, dict]], float | None]:
        return lambda res: (res[name]["events_per_s"] / res[base]["events_per_s"]
                            if name in res and base in res else None)

    out: list[Row] = []
    for stage in STAGES:
        for pack in names:
            goal = TARGETS[stage]
            out.append((stage, Path(pack).name, f">= {goal}x floor",
                        ratio(stage_name(stage, pack), floor_name(pack)), lambda v, g=goal: v >= g))
    out += [
        (PIPE_LABEL, "evtool", ">= 0.25x floor", ratio(pipe, tuned), lambda v: v >= 0.25),
        ("audit", "evtool", ">= 0.25x floor", ratio(audit, tuned), lambda v: v >= 0.25),
        ("audit", "evtool", ">= 40x naive", ratio(audit, naive), lambda v: v >= 40),
        ("replay --verify", "evtool", "<= 3x replay's time", ratio("replay", "replay --verify"),
         lambda v: v <= 3),
        ("learn, 100k events", "evtool", "< 10 s", lambda res: res.get("learn", {}).get("seconds"),
         lambda v: v < 10),
        ("aggregate RSS, 2M -> 6M events", "evtool", "growth within 5%",
         lambda res: res.get("memory", {}).get("growth"), lambda v: abs(v) <= 0.05),
        ("aggregate RSS, 1M distinct ids", "evtool", "<= 150 MB",
         lambda res: res.get("memory", {}).get("distinct_default_mb"), lambda v: v <= 150),
    ]
    return out


def print_table(table: list[Row], passes: list[tuple[str, dict[str, dict]]]) -> int:
    """The table, one column per pass; returns how many figures miss their target."""
    head = " | ".join(f"{label}" for label, _ in passes)
    print(f"\n| stage | pack | target | {head} |\n|---|---|---|{'---|' * len(passes)}")
    missed = 0
    for stage, pack, target, figure, meets in table:
        cells = []
        for _, res in passes:
            value = figure(res)
            if value is None:
                cells.append("-")
                continue
            ok = meets(value)
            missed += not ok
            cells.append(f"{value:.2f}{'' if ok else ' ✗'}")
        print(f"| {stage} | {pack} | {target} | {' | '.join(cells)} |")
    print(f"\n{missed} figure(s) miss their target" if missed else "\nevery figure meets its target")
    return missed
