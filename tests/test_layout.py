"""The house keeps its shape: each stage imports only the stages below it (melodia/ARCHITECTURE.md),
no module imports another in a circle, and the package root holds no stage of its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "melodia"

# stage -> the stages it may import (every import counts, also those inside functions);
# "melodia" is the package root, for __version__
ALLOWED = {
    "errors": set(),
    "util": {"errors"},
    "midi": {"util", "errors"},
    "encoding": {"midi", "util", "errors"},
    "output": {"midi", "util", "errors"},
    "features": {"encoding", "midi", "util", "errors"},
    "corpus": {"encoding", "midi", "util", "errors", "melodia"},
    "model": {"features", "encoding", "midi", "util", "errors"},
    "evaluate": {"model", "corpus", "features", "encoding", "midi", "output", "util", "errors"},
    "training": {"model", "corpus", "features", "encoding", "midi", "evaluate", "util", "errors"},
    "generation": {"model", "features", "encoding", "midi", "evaluate", "util", "errors"},
    "live": {"generation", "model", "features", "encoding", "midi", "util", "errors"},
    "cli": {"live", "generation", "training", "evaluate", "model", "corpus", "features",
            "encoding", "midi", "output", "util", "errors", "melodia"},
    "weights": set(),
    "__init__": {"output", "model", "encoding", "generation"},
    "__main__": {"cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the melodia modules it imports (a package's face counts as the package)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        out[module_name(path)] = {m for m in found if m.split(".")[0] == "melodia"}
    return out


def stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "melodia"
    return parts[1]


def stage_of_file(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        own = stage_of_file(module)
        for target in targets:
            if stage(target) != own and stage(target) not in ALLOWED[own]:
                bad.append(f"{module} -> {target}")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles between modules (package faces left out: a face imports its own parts)."""
    faces = {m for m in graph if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()}
    edges = {m: {t for t in ts if t in graph and t not in faces} for m, ts in graph.items()
             if m not in faces}
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_every_stage_imports_only_the_stages_below_it():
    graph = imports()
    assert {stage_of_file(m) for m in graph} <= set(ALLOWED)
    assert wrong_way(graph) == []


def test_no_module_imports_itself_in_a_circle():
    assert cycles(imports()) == []


def test_the_package_root_holds_no_stage():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py",
                                                            "errors.py"]


def test_a_wrong_import_and_a_circle_are_caught():
    graph = {"melodia.midi.files": {"melodia.model.lstm"},
             "melodia.model.lstm": {"melodia.model.stepper"},
             "melodia.model.stepper": {"melodia.model.lstm"}}
    assert wrong_way(graph) == ["melodia.midi.files -> melodia.model.lstm"]
    assert cycles(graph) == [["melodia.model.lstm", "melodia.model.stepper", "melodia.model.lstm"]]
