"""evtool gen: synthetic events on a simulated clock, paced in real time unless --fast."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import repeat
from operator import itemgetter

import click
import orjson

from evtool.cli.options import (
    FRACTION,
    SECONDS,
    SECONDS_OR_ZERO,
    Finite,
    option,
    output_options,
)
from evtool.cli.packs import pack_from_options
from evtool.core.generator import Emitted, GenConfig, Generator
from evtool.core.instant import MICROS, TimeError, instant_us
from evtool.core.pacing import Pacer
from evtool.core.truth import Truth
from evtool.runtime.loop import ExitStatus
from evtool.runtime.produce import pump
from evtool.runtime.progress import counting, writes_a_file
from evtool.runtime.stage import fail, open_output


def start_micros(text: str | None, option_name: str = "--start") -> int:
    """An ISO time option as epoch microseconds; without an offset it is UTC; default: now."""
    if text is None:
        return int(time.time() * MICROS)
    try:
        return instant_us(text)
    except TimeError as exc:
        try:
            return instant_us(text + "Z")
        except TimeError:
            raise click.BadParameter(str(exc), param_hint=option_name) from None


@click.command()
@output_options
@option("--count", type=click.IntRange(min=0), default=None, help="Lines to emit [default: endless].")
@option("--rate", type=Finite(min=0, max=1e9, min_open=True), default=10.0, show_default=True,
        help="Events per second of event time.")
@option("--seed", type=int, default=None, help="Seed for byte-identical output (with --start).")
@option("--start", default=None, metavar="ISO", help="Event time of the first event [default: now].")
@option("--fast", is_flag=True, help="Do not sleep; timestamps still follow the simulated clock.")
@option("--burst-probability", type=FRACTION, default=0.0, show_default=True,
        help="Chance per event that a burst of security incidents starts.")
@option("--burst-size", type=click.IntRange(min=1), default=None,
        help="Events in a burst (one region, one correlation_id, close together) "
             "[default: the pack's; evtool 50, lab3 5-15].")
@option("--duplicates", type=FRACTION, default=0.0, show_default=True,
        help="Fraction of lines that re-emit an earlier event exactly.")
@option("--out-of-order", type=FRACTION, default=0.0, show_default=True,
        help="Fraction of events held back by up to --max-delay seconds of event time.")
@option("--max-delay", type=SECONDS_OR_ZERO, default=5.0, show_default=True,
        help="Longest hold-back of an out-of-order event, in seconds.")
@option("--invalid", type=FRACTION, default=0.0, show_default=True,
        help="Fraction of lines that break a rule of the contract, or are not JSON at all.")
@option("--truth", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE",
        help="Also write the windows a correct aggregate must output for these events.")
@option("--window", type=SECONDS, default=5.0, show_default=True,
        help="With --truth: the aggregate's --window.")
@option("--lateness", type=SECONDS_OR_ZERO, default=0.0, show_default=True,
        help="With --truth: the aggregate's --lateness.")
def gen(output_spec: str, amqp_url: str, connect_timeout: float, quiet: bool, pack_spec: str,
        count: int | None, rate: float,
        seed: int | None, start: str | None, fast: bool, burst_probability: float,
        burst_size: int | None, duplicates: float, out_of_order: float, max_delay: float,
        invalid: float, truth: str | None, window: float, lateness: float) -> ExitStatus:
    """Generate synthetic events from a pack's schemas as NDJSON.

    The default pack makes security, survey and migration events; --pack lab3 speaks the
    original lab3 services' vocabulary; --pack DIR generates from your own schemas.

    \b
    Example:
      evtool gen --count 5 --seed 1 --start 2026-11-26T00:00:00Z --fast
      evtool gen --pack lab3 --count 100 --fast | evtool validate --pack lab3
      evtool gen --rate 200 --duplicates 0.02 --out-of-order 0.05 --invalid 0.01 | evtool validate
      evtool gen --count 10000 --fast --out-of-order 0.1 --max-delay 2 --truth want.ndjson \\
        --window 5 --lateness 2 | evtool validate | evtool aggregate --lateness 2 > got.ndjson
    """
    if duplicates + invalid > 1:
        raise click.UsageError("--duplicates and --invalid add up to more than 1")
    cfg = GenConfig(start_us=start_micros(start), pack=pack_from_options(pack_spec), count=count,
                    rate=rate, seed=seed,
                    burst_probability=burst_probability, burst_size=burst_size,
                    duplicates=duplicates, out_of_order=out_of_order, max_delay=max_delay,
                    invalid=invalid)
    try:
        generator = Generator(cfg)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sink = open_output("gen", output_spec, amqp_url, connect_timeout, cfg.pack)
    expected = Truth(window, lateness, cfg.pack.roles) if truth else None
    made = generator if expected is None else _with_truth(generator, expected)
    # unpaced, no step per line in Python: the instants are not needed
    items: Iterator[tuple[float, bytes]]
    if fast:
        items = zip(repeat(0.0), generator.lines() if expected is None else map(itemgetter(1), made))
    else:
        items = ((at_us / MICROS, line) for at_us, line, _ in made)
    status = pump("gen", items, sink, None if fast else Pacer(time.monotonic), quiet,
                  lambda n: f"{n} out ({generator.duplicates} duplicates, {generator.invalid} invalid)",
                  counting("gen", count if writes_a_file(output_spec) else None, quiet))
    if expected is not None and truth is not None:
        try:
            with open(truth, "wb") as out:
                out.writelines(orjson.dumps(w) + b"\n" for w in expected.windows())
        except OSError as exc:
            fail("gen", f"cannot write {truth}: {exc.strerror}")
    return status


def _with_truth(generator: Generator, truth: Truth | None) -> Iterator[Emitted]:
    """Pass the generator's items through, feeding the valid ones to the truth."""
    for item in generator:
        if truth is not None and item[2]:
            truth.add(item[1])
        yield item
