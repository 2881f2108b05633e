"""The import graph of the product: layers point one way and nothing imports in a circle.

Every import counts, at module level or inside a function, because a function-level import
is still a dependency; only imports under ``if TYPE_CHECKING:`` are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Which packages each package may import (besides itself).
ALLOWED = {
    "core": set(),
    "synthlogs": {"core"},
    "eventlogs": {"core"},
    "modelkit": {"core"},
    "evaluation": {"core", "modelkit"},
    "training": {"core", "eventlogs", "modelkit", "evaluation"},
    "serving": {"core", "modelkit"},
    "monitoring": {"core", "modelkit", "evaluation", "eventlogs"},
    "pipelines": {
        "core", "synthlogs", "eventlogs", "modelkit", "evaluation", "training", "serving",
        "monitoring",
    },
    "interest": {
        "core", "synthlogs", "eventlogs", "modelkit", "evaluation", "training", "serving",
        "monitoring", "pipelines",
    },
}  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for package in ALLOWED:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (function-level imports included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_nodes(tree)
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "modelkit.registry" in import_graph()["serving.champion"]  # a function-level import


def test_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layers_point_one_way(package: str) -> None:
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        if source.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package] | {package}
    )
    assert wrong == []


def test_nothing_in_the_product_starts_the_cli() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for package in ALLOWED
        if package != "interest"
        for path in (REPO / package).rglob("*.py")
        if "interest.cli" in path.read_text() or '"interest", "' in path.read_text()
    ]
    assert offenders == []
