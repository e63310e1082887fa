"""robolearn: robot learning from simulation to the real robot.

The distribution is one namespace whose subpackages live in the repository's top-level folders:
``robolearn.sim`` is ``sim/``, ``robolearn.policies`` is ``policies/``, ``robolearn.datasets`` is
``datasets/`` and ``robolearn.ros_nodes`` is ``ros_nodes/``. An installed wheel copies them under
``robolearn/``; an editable install maps them with setuptools' finder; and when this file is imported
straight from a source checkout (``python -m pytest`` at the repo root), the checkout root is added
to this package's search path so the same names resolve. The top-level folders have no
``__init__.py``, so ``import datasets`` from the repo root still finds Hugging Face's library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__version__ = "0.1.0"

# Offscreen rendering on a headless Linux machine goes through EGL (Mesa's llvmpipe on a CPU). MuJoCo
# reads MUJOCO_GL when it is first imported, so this must run before any robolearn module imports it.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "sim").is_dir():
    __path__.append(str(_checkout))  # noqa: F821  (module __path__ of a package)

