"""A pack that would crash a stage on its first event is refused at load: exit 2, one line
naming the file and the keyword, never an internal error later."""

from __future__ import annotations

import copy
import json
import time

import pytest

from tests.conftest import records, run
from tests.test_packs import USER_PACK, write_pack

WEATHER = "payloads/weather.reading.json"


def edited(change) -> dict:
    files = copy.deepcopy(USER_PACK)
    change(files)
    return files


def _set(path: list[str], value: object):
    def change(files: dict) -> None:
        node = files[WEATHER]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _text(old: str, new: str):
    def change(files: dict) -> None:
        files[WEATHER] = json.dumps(files[WEATHER]).replace(old, new)
    return change


CELSIUS = ["properties", "reading", "properties", "celsius"]
CASES = [
    (_set([*CELSIUS, "multipleOf"], 0), WEATHER, "multipleOf"),
    (_text('"maximum": 55', '"maximum": Infinity'), WEATHER, "Infinity"),
    (_text('"maximum": 55', '"maximum": NaN'), WEATHER, "NaN"),
    (_text('"maximum": 55', '"maximum": 1e999'), WEATHER, "maximum"),
    (_text('"maximum": 55', '"maximum": 1' + "0" * 400), WEATHER, "maximum"),     # no double holds it
    (_set(["properties", "note"], {"$ref": "#/definitions/a"}), WEATHER, "points at nothing"),
    (lambda f: (f[WEATHER].__setitem__("definitions", {"a": {"$ref": "#/definitions/b"},
                                                       "b": {"$ref": "#/definitions/a"}}),
                f[WEATHER]["properties"].__setitem__("note", {"$ref": "#/definitions/a"})),
     WEATHER, "refers to itself"),
    (_set(["properties", "note"], {"$ref": 5}), WEATHER, "$ref"),
    (lambda f: f.__setitem__(WEATHER, '{"not":' * 100_000 + "{}" + "}" * 100_000), WEATHER, "deep"),
    (lambda f: f.__setitem__(WEATHER, '{"not":' * 200 + "{}" + "}" * 200), WEATHER, "deeper"),
    (_set(["unevaluatedProperties"], False), WEATHER, "unevaluatedProperties"),
    (_set(["dependentRequired"], {"note": ["tags"]}), WEATHER, "dependentRequired"),
    (_set(["dependentSchemas"], {"note": {"required": ["tags"]}}), WEATHER, "dependentSchemas"),
    (_set(["properties", "tags", "minContains"], 2), WEATHER, "minContains"),
    (_set(["properties", "note", "$dynamicRef"], "#x"), WEATHER, "$dynamicRef"),
    (_set(["properties", "note", "maxLength"], -1), WEATHER, "maxLength"),
    (lambda f: f.__setitem__("pack.json", json.dumps(f["pack.json"]).replace(
        '"weather.reading": 2', '"weather.reading": 1e999')), "pack.json", "weight"),
    (lambda f: f["pack.json"].__setitem__("burst", {"source": "weather.reading", "size": [1, 2, 3]}),
     "pack.json", "burst"),
]


@pytest.mark.parametrize("change, file, keyword", CASES)
def test_a_pack_no_validator_can_apply_is_refused_at_load(tmp, change, file: str, keyword: str) -> None:
    pack = write_pack(tmp / "pack", edited(change))
    for stage in (["validate"], ["gen", "--count", "5"]):
        result = run([*stage, "--pack", str(pack)], stdin=b"")
        assert result.returncode == 2, (stage, result.stderr)
        line = result.stderr.decode().strip().splitlines()[-1]
        assert file in line and keyword in line, line
        assert "internal error" not in result.stderr.decode()


@pytest.mark.parametrize("name", ["payloads/weather.reading.json", "envelope.json"])
def test_a_pack_file_that_links_out_of_the_pack_is_refused(tmp, name: str) -> None:
    pack = write_pack(tmp / "pack", copy.deepcopy(USER_PACK))
    outside = tmp / "elsewhere.json"
    outside.write_text((pack / name).read_text())
    (pack / name).unlink()
    (pack / name).symlink_to(outside)
    result = run(["validate", "--pack", str(pack)], stdin=b"")
    assert result.returncode == 2 and b"leads out of the pack" in result.stderr, result.stderr


def test_a_large_enum_loads_quickly_and_judges_as_an_enum(tmp) -> None:
    files = copy.deepcopy(USER_PACK)
    stations = [f"ST-{i:06d}" for i in range(50_000)]
    files[WEATHER]["properties"]["station"] = {"type": "string", "enum": stations}
    pack = write_pack(tmp / "pack", files)
    made = run(["gen", "--pack", str(pack), "--count", "50", "--fast", "--seed", "2", "-q"]).stdout
    bad = made.replace(b'"station":"ST-', b'"station":"XX-')
    started = time.monotonic()
    judged = records(run(["validate", "--pack", str(pack), "-q"], stdin=made + bad).stdout)
    assert time.monotonic() - started < 5                      # it took 10 s to load, and 500 MB
    good = [r for r in judged if r.get("kind") != "deadletter"]
    letters = [r for r in judged if r.get("kind") == "deadletter"]
    weather = bad.count(b'"station":"XX-')
    assert len(good) == 2 * len(made.splitlines()) - weather and len(letters) == weather > 0
    assert all("payload.station must be one of the 50000 values" in r["error"] for r in letters)
