"""The package's shape: concepts at the top, no import cycles, one writer of the cache."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import vibe_jet_tagging

PACKAGE = Path(vibe_jet_tagging.__file__).parent
NAME = "vibe_jet_tagging"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([NAME, *parts])] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports: every import statement, at any depth
    (inside functions and ``if TYPE_CHECKING:`` blocks too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from x import y` imports x.y when y is a module, else x
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                for a in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_itself_back_through_others():
    found = modules()
    known = set(found)
    graph = defaultdict(set, {name: imports(name, path, known) for name, path in found.items()})
    assert cycles(graph) == []


def test_the_import_graph_sees_every_kind_of_import():
    found = modules()
    known = set(found)
    tagger = imports(f"{NAME}.tagging.tagger", found[f"{NAME}.tagging.tagger"], known)
    assert {f"{NAME}.tagging.gate", f"{NAME}.tagging.batching"} <= tagger  # from . import x
    assert f"{NAME}.scale.batchread" in tagger  # inside a function
    init = imports(f"{NAME}.tagging", found[f"{NAME}.tagging"], known)
    assert f"{NAME}.tagging.tagger" in init  # under TYPE_CHECKING


def test_the_cycle_finder_finds_a_cycle():
    assert cycles(defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})) == [
        ["a", "b", "c"]
    ]


def test_the_top_level_holds_at_most_fifteen_concepts():
    entries = {
        p.name
        for p in PACKAGE.iterdir()
        if p.name not in ("__init__.py", "py.typed", "__pycache__")
    }
    assert len(entries) <= 15, sorted(entries)
    for package in ("jets", "servers", "tagging", "store", "scale", "evaluation", "cli"):
        assert (PACKAGE / package / "__init__.py").exists(), package


def test_only_the_gate_writes_the_result_cache():
    writers = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "put"
                and "cache" in ast.unparse(node.func.value).lower()
            ):
                writers.add(name)
    assert writers == {f"{NAME}.tagging.gate"}, writers


def test_the_public_names_stay_importable_from_the_package():
    for name in vibe_jet_tagging.__all__:
        assert getattr(vibe_jet_tagging, name) is not None, name
