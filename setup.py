"""Maps the repository's top-level folders onto the one ``robolearn`` namespace.

``robolearn/`` is the core package; ``sim/``, ``policies/``, ``datasets/``, ``ros_nodes/`` and
``configs/`` install as ``robolearn.sim``, ``robolearn.policies``, ... Their top folders carry no
``__init__.py`` (see robolearn/__init__.py), so packages are discovered here by walking the folders
rather than listed by hand. Everything else lives in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent
FOLDERS = {
    "robolearn": "robolearn",
    "robolearn.sim": "sim",
    "robolearn.policies": "policies",
    "robolearn.datasets": "datasets",
    "robolearn.ros_nodes": "ros_nodes",
    "robolearn.configs": "configs",
}
DATA = ["*.xml", "*.yaml", "*.json", "*.png", "*.obj", "*.stl", "py.typed"]
SKIP = {"__pycache__", "launch", "resource", "test"}


def discover() -> tuple[list[str], dict[str, str]]:
    packages, package_dir = [], {}
    for name, folder in FOLDERS.items():
        package_dir[name] = folder
        for path in sorted([ROOT / folder, *(ROOT / folder).rglob("*")]):
            if path.is_dir() and not (SKIP & set(path.relative_to(ROOT).parts)):
                rel = path.relative_to(ROOT / folder).parts
                packages.append(".".join([name, *rel]))
    return packages, package_dir


# The quadrotor's physics-rate loop in C (sim/quadrotor/substeps.py). Optional: without a compiler the
# install goes on and the Python loop runs, with the same results. No fused multiply-add, so the C
# arithmetic rounds exactly as Python's.
NATIVE = Extension("robolearn.sim.quadrotor._substeps", ["sim/quadrotor/_substeps.c"], optional=True,
                   extra_compile_args=[] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"])

packages, package_dir = discover()
setup(packages=packages, package_dir=package_dir, package_data={name: DATA for name in packages},
      ext_modules=[NATIVE])
