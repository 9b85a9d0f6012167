"""The package's shape: no import cycle, and every import points down the layers."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "evtool"
# a layer may import only those below it (and evtool.tuning, the process's own settings,
# evtool.console, the one way to speak on stderr, and evtool.errors, the one way an end fails)
BELOW = {"core": set(), "transports": {"core"}, "store": {"core", "transports"},
         "tui": {"core"}, "schemas": {"core"}, "runtime": {"core", "transports", "store", "schemas"}}
EVERYWHERE = {"", "tuning", "console", "errors"}


def imports() -> dict[str, set[str]]:
    """module -> the evtool modules it imports (at any depth of its body)."""
    modules = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            origin = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            if isinstance(node, ast.ImportFrom) and node.level == 0 and origin.startswith("evtool"):
                found.add(origin)
                found |= {f"{origin}.{a.name}" for a in node.names} & modules.keys()
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("evtool")}
        graph[name] = (found & modules.keys()) - {name}
    return graph


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = imports()
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            assert module != start, f"{start} imports itself through a cycle"
            if module not in seen:
                seen.add(module)
                todo += graph.get(module, ())


def test_imports_point_down_the_layers() -> None:
    for module, found in imports().items():
        layer = module.split(".")[1] if module.count(".") else ""
        if layer not in BELOW:
            continue
        for target in found:
            other = target.split(".")[1] if target.count(".") else ""
            assert other in BELOW[layer] | EVERYWHERE | {layer}, f"{module} imports {target} above it"
