"""The package's layers: every import runs down (or within a layer), and no modules import each other in a circle.

The layer order is the table in ``docs/architecture.md``; this test reads it, so the document
and the code cannot drift apart. Lazy imports inside functions count: a lazy import that dodges
a loop is a function in the wrong layer.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package name -> folder (kernels/ and export/ are installed as swintormer.kernels / swintormer.export)
PACKAGES = {"swintormer": ROOT / "swintormer", "swintormer.kernels": ROOT / "kernels", "swintormer.export": ROOT / "export"}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""

    def owner(name: str) -> str:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(owner(a.name) for a in node.names if a.name.startswith("swintormer"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("swintormer"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else owner(node.module))
    return found - {""}


def layer_table(text: str) -> list[tuple[int, str, list[str]]]:
    """``[(layer, name, module patterns)]`` from the table between the ``layers`` markers."""
    block = text.split("<!-- layers: start -->")[1].split("<!-- layers: end -->")[0]
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows.append((int(cells[0]), cells[1], re.findall(r"`([^`]+)`", cells[2])))
    return rows


def layer_of(module: str, table: list[tuple[int, str, list[str]]]) -> int:
    hits = {layer for layer, _, patterns in table for p in patterns if fnmatch.fnmatchcase(module, p)}
    assert len(hits) == 1, f"{module} is in layers {sorted(hits)} of docs/architecture.md; it must be in exactly one"
    return hits.pop()


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imports(path, known) for name, path in known.items()}


@pytest.fixture(scope="module")
def table():
    return layer_table((ROOT / "docs" / "architecture.md").read_text())


def test_every_module_has_a_layer(graph, table):
    assert [layer for layer, _, _ in table] == sorted({layer for layer, _, _ in table}), "layers out of order"
    for module in graph:
        layer_of(module, table)


def upward_imports(graph: dict[str, set[str]], table) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module, table)
        for target in sorted(targets):
            theirs = layer_of(target, table)
            if theirs > mine:
                found.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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


def test_no_import_runs_up_a_layer(graph, table):
    assert upward_imports(graph, table) == []


def test_no_import_loops(graph):
    assert cycles(graph) == []


def test_the_checks_catch_what_they_guard_against(graph, table):
    """An upward import and a loop planted in a copy of the graph are both found."""
    planted = {k: set(v) for k, v in graph.items()}
    planted["swintormer.tiling"].add("swintormer.inference")
    assert upward_imports(planted, table) == ["swintormer.tiling (layer 2) imports swintormer.inference (layer 9)"]
    planted["swintormer.inference"].add("swintormer.tiling")
    planted["swintormer.tiling"].add("swintormer.export.deploy")
    assert any("swintormer.tiling" in c and "swintormer.inference" in c for c in cycles(planted))
