"""The house rule that arrows point one way: no import cycle among the project's packages.

Runs the shared checker (imports read with ast, lazy imports inside functions count) when the
workspace has it, and the same check written here otherwise, so a clean clone tests it too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nodes", "compiler", "templates", "training", "builder")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def import_graph() -> nx.DiGraph:
    """module -> module it imports (the package's own ``__init__`` is not an edge)."""
    mods = _modules()
    graph = nx.DiGraph()
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != mod and not mod.startswith(target + "."):
                    graph.add_edge(mod, target)
    return graph


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("low,high", [("nodes", "compiler"), ("compiler", "templates"),
                                      ("compiler", "training"), ("training", "builder"),
                                      ("templates", "builder"), ("nodes", "training")])
def test_arrows_point_down(low: str, high: str) -> None:
    """``builder -> training, templates -> compiler -> nodes``: nothing imports upward."""
    graph = import_graph()
    upward = [(a, b) for a, b in graph.edges if a.split(".")[0] == low and b.split(".")[0] == high]
    assert not upward, f"{low} imports {high}: {upward}"


def test_checker_sees_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself can fail: two modules importing each other lazily are a cycle."""
    pkg = tmp_path / "nodes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from .a import f\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGES", ("nodes",))
    graph = import_graph()
    assert any(len(c) > 1 for c in nx.strongly_connected_components(graph))
