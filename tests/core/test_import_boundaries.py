"""Every import points down the floor plan, and no two modules import each other in a circle.

An ``ast`` scan of the source tree (no module is imported): each ``import`` and ``from ... import``,
at module level or inside a function, is an edge from the importing module to the robolearn module it
names. The floor plan, bottom to top:

* ``core``: config, protocols, durable I/O, statistics; imports nothing of ours and only the standard
  library, numpy and PyYAML;
* ``sim``, ``policies``, ``datasets``: ``core`` only, and never each other;
* ``rl``, then ``refine``, then ``hil``: the algorithms see the ``Policy`` protocol, gymnasium envs and
  datasets, never the simulator, the policy implementations or the policy loader;
* the application layer (collection, evaluation, base-policy training, the policy loader, recording,
  the Ray scale-out in ``dist``);
* ``cli`` and ``pipeline`` on top: the only importers of ``ros_nodes``, the ROS 2 adapter.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"robolearn": "robolearn", "sim": "robolearn.sim", "policies": "robolearn.policies",
           "datasets": "robolearn.datasets", "ros_nodes": "robolearn.ros_nodes"}
SKIP_PARTS = {"__pycache__", "launch", "test"}

CORE = "robolearn.core"
LOW = (CORE, "robolearn.sim", "robolearn.policies", "robolearn.datasets")
ALGORITHMS = ("robolearn.rl", "robolearn.refine", "robolearn.hil", "robolearn.teleop")
APPS = ("robolearn.collect", "robolearn.evaluate", "robolearn.rollout", "robolearn.train",
        "robolearn.policy_factory", "robolearn.wiring", "robolearn.refined_export", "robolearn.teleop.record",
        "robolearn.teleop.devices", "robolearn.dist")
TOP = ("robolearn.cli", "robolearn.pipeline", "robolearn.__main__")

ALLOWED: dict[str, tuple[str, ...]] = {
    # longest prefix wins; a module may always import its own package
    CORE: (),
    "robolearn.sim": (CORE,),
    "robolearn.policies": (CORE,),
    "robolearn.datasets": (CORE,),
    "robolearn.rl": (CORE,),
    "robolearn.refine": (CORE, "robolearn.rl", "robolearn.datasets"),
    "robolearn.teleop": (CORE, "robolearn.datasets"),
    "robolearn.hil": (CORE, "robolearn.rl", "robolearn.refine", "robolearn.datasets", "robolearn.teleop"),
    **{app: (*LOW, *ALGORITHMS, *APPS) for app in APPS},
    "robolearn.ros_nodes": ("robolearn.ros_nodes", *LOW, *ALGORITHMS, *APPS),
    **{top: (*LOW, *ALGORITHMS, *APPS, *TOP, "robolearn.ros_nodes") for top in TOP},
    "robolearn": (CORE,),  # robolearn/__init__.py
}

FORBIDDEN_LIBRARIES: dict[str, tuple[str, ...]] = {
    # sim may hand rsl_rl torch tensors (sim/rsl_rl_env.py), but knows no policy library or ROS
    "robolearn.sim": ("rclpy", "diffusers"),
    "robolearn.policies": ("mujoco", "rclpy", "gymnasium"),
    "robolearn.datasets": ("mujoco", "rclpy", "diffusers"),
    "robolearn.rl": ("mujoco", "rclpy"),
    "robolearn.refine": ("mujoco", "rclpy"),
    "robolearn.hil": ("mujoco", "rclpy"),
}
CORE_LIBRARIES = {"numpy", "yaml"}


def _modules() -> dict[str, Path]:
    """Every module of the tree by dotted name (``robolearn.sim.registry``)."""
    out: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder)
            if SKIP_PARTS & set(rel.parts):
                continue
            parts = [p for p in rel.with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import in ``path``; relative imports resolved."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module, node.lineno
            for alias in node.names:  # ``from robolearn.sim import vector`` names a module
                if f"{module}.{alias.name}" in MODULES:
                    yield f"{module}.{alias.name}", node.lineno


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _rule(module: str) -> str:
    return max((p for p in ALLOWED if _within(module, p)), key=len)


def _edges() -> dict[str, set[str]]:
    return {name: {m for m, _ in _imports(name, path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def test_the_scan_sees_the_tree():
    assert {"robolearn.core.config", "robolearn.sim.registry", "robolearn.policies.diffusion",
            "robolearn.refine.loop", "robolearn.ros_nodes.safety"} <= set(MODULES)


def test_every_import_points_down():
    wrong = []
    for name, path in MODULES.items():
        rule = _rule(name)
        for module, line in _imports(name, path):
            if not _within(module, "robolearn") or module not in MODULES and module != "robolearn":
                continue
            if _within(module, rule) or any(_within(module, ok) for ok in ALLOWED[rule]):
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line} ({rule}) imports {module}")
    assert not wrong, "imports against the floor plan:\n" + "\n".join(wrong)


def test_libraries_stay_in_their_rooms():
    wrong = []
    stdlib = set(sys.stdlib_module_names)
    for name, path in MODULES.items():
        rule = _rule(name)
        for module, line in _imports(name, path):
            top = module.split(".")[0]
            if not top or top == "robolearn" or top == "__future__":
                continue
            if rule == CORE and top not in stdlib and top not in CORE_LIBRARIES:
                wrong.append(f"{path.relative_to(ROOT)}:{line} core imports {top}")
            if top in FORBIDDEN_LIBRARIES.get(rule, ()):
                wrong.append(f"{path.relative_to(ROOT)}:{line} {rule} imports {top}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = _edges()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("rule", sorted(ALLOWED))
def test_the_rules_name_real_packages(rule):
    assert rule == "robolearn" or any(_within(m, rule) for m in MODULES), rule
