"""However deep a record nests, every stage keeps going: too deep is a dead letter, and the
valid records of the same batch go on."""

from __future__ import annotations

import pytest

from tests.conftest import gen_lines, records, run


def nested(line: bytes, depth: int) -> bytes:
    return line[:-1] + b', "extra": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize("pack", ["evtool", "lab3"])
@pytest.mark.parametrize("depth", [255, 1000, 5000])
def test_a_deep_record_is_a_dead_letter_never_a_lost_batch(tmp, pack: str, depth: int) -> None:
    good = gen_lines(3, 4, "--pack", pack).splitlines()
    stream = b"\n".join([nested(good[0], depth), *good[1:]]) + b"\n"
    for stage in (["validate"], ["aggregate", "--forward", "--no-alerts"],
                  ["audit", "--db", str(tmp / f"{depth}.db")], ["watch", "--once", "--json"]):
        result = run([*stage, "--pack", pack, "-q"], stdin=stream)
        assert result.returncode == 0, (stage, result.stderr[-300:])
        assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr
        if stage[0] == "watch":
            continue
        out = records(result.stdout)
        events = [r for r in out if "kind" not in r or r.get("kind") is None]
        assert len(events) >= 2, (stage, out[:3])             # the good ones went on
