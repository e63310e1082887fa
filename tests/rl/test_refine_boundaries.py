"""Refinement sees a Policy, gymnasium envs, the core, rl and datasets: an ``ast`` scan of every import in
``robolearn/refine``, ``robolearn/rl`` and ``robolearn/hil`` (function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "robolearn"
LAYERS = ("refine", "rl", "hil")
FORBIDDEN = ("robolearn.sim", "robolearn.policies", "robolearn.policy_factory", "robolearn.wiring",
             "robolearn.ros_nodes", "ros_nodes", "robolearn.pipeline", "robolearn.cli", "robolearn.collect",
             "robolearn.evaluate", "robolearn.rollout", "robolearn.train")


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports (absolute names)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


@pytest.mark.parametrize("layer", LAYERS)
def test_refinement_imports_no_simulator_policy_loader_or_entry_point(layer) -> None:
    bad = [f"{path.relative_to(ROOT.parent)} imports {name}" for path in sorted((ROOT / layer).rglob("*.py"))
           for name in imports(path) if name.startswith(FORBIDDEN)]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_among_refinement_modules() -> None:
    """Module-level imports among robolearn.refine / rl / hil and policy_factory form no cycle."""
    files = {p: ".".join(p.relative_to(ROOT.parent).with_suffix("").parts) for layer in LAYERS
             for p in (ROOT / layer).rglob("*.py")} | {ROOT / "policy_factory.py": "robolearn.policy_factory"}
    names = {m.removesuffix(".__init__") for m in files.values()}
    graph: dict[str, set[str]] = {}
    for path, module in files.items():
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and n.level == 0]
        graph[module.removesuffix(".__init__")] = {n.module for n in top if n.module in names}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*stack, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
