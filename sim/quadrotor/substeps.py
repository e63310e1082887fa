"""The quadrotor's physics-rate loop: Python reference and the compiled path that replaces it.

Between two policy actions a quadrotor env runs ``n_substeps`` physics steps (10 at 500 Hz physics and
50 Hz control), and before each one sets

* the four rotor commands ``data.ctrl[:4]`` (N) from the rate loop and mixer
  (:meth:`~robolearn.sim.quadrotor.rate_controller.RateController.step_physics`), in ``rates`` mode;
* the wind drag ``xfrc_applied[body, :3] = push + drag * (wind - qvel[0:3])`` (N), in both modes.

Both feed back the velocities of that very step, so Python ran around each ``mj_step``: about 15 us of
interpreter per control step against 26 us of physics. The compiled module ``_substeps`` (``_substeps.c``,
built by ``pip install``) runs the same double operations in the same order in C, with the GIL released,
and calls libmujoco's own ``mj_step``: the results are bit-identical (``tests/sim/test_substeps.py``).
Where the module is missing (no compiler at install time) or ``ROBOLEARN_NATIVE_SUBSTEPS=0`` is set,
the Python loops run instead, with the same results.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import mujoco
import numpy as np

log = logging.getLogger(__name__)


def step_with_drag(model: mujoco.MjModel, data: mujoco.MjData, nstep: int, force: np.ndarray,
                   push: Sequence[float], drag: Sequence[float], wind: Sequence[float]) -> tuple[float, float, float]:
    """``nstep`` physics steps with ``force[:3] = push + drag * (wind - data.qvel[0:3])`` (N) set before each.

    The Python reference of the drag-only loop. ``force`` is the vehicle's ``xfrc_applied`` row ``(6,)``,
    ``push`` (3,) N, ``drag`` (3,) N/(m/s), ``wind`` (3,) m/s. Returns the last drag force (N).
    """
    px, py, pz = push
    dx, dy, dz = drag
    ux, uy, uz = wind
    qvel, out, step = data.qvel[0:3], memoryview(force), mujoco.mj_step
    fx = fy = fz = 0.0
    for _ in range(nstep):
        vx, vy, vz = qvel.tolist()
        fx, fy, fz = dx * (ux - vx), dy * (uy - vy), dz * (uz - vz)
        out[0], out[1], out[2] = px + fx, py + fy, pz + fz
        step(model, data)
    return fx, fy, fz


@cache
def _mj_step_address() -> int | None:
    """Address of ``mj_step`` in the libmujoco that the ``mujoco`` package loaded, or None if not found."""
    folder = Path(mujoco.__file__).parent
    for pattern in ("libmujoco.so*", "libmujoco*.dylib", "mujoco.dll"):
        for path in sorted(folder.glob(pattern)):
            try:
                return ctypes.cast(ctypes.CDLL(str(path)).mj_step, ctypes.c_void_p).value
            except (OSError, AttributeError):
                continue
    return None


@cache
def native_module():
    """The compiled ``_substeps`` module with libmujoco's ``mj_step`` found, else None (logged once)."""
    if os.environ.get("ROBOLEARN_NATIVE_SUBSTEPS", "1") == "0":
        return None
    try:
        from robolearn.sim.quadrotor import _substeps
    except ImportError as exc:
        log.warning("quadrotor physics loop runs in Python (%s); reinstall robolearn with a C compiler "
                    "(`pip install -e .`) for the compiled loop", exc)
        return None
    if _mj_step_address() is None:
        log.warning("quadrotor physics loop runs in Python: libmujoco not found beside the mujoco package")
        return None
    return _substeps


class NativeSubsteps:
    """The compiled loop bound to one env's ``model`` and ``data``.

    Args:
        model, data: the env's MuJoCo model and data; they must outlive this object.
        body: the vehicle body's id (its ``xfrc_applied`` row takes the drag).
        constants: the rate controller's constants ``(23,)`` float64
            (:meth:`RateController.native_constants`), or None for the drag-only loop (``motors`` mode).
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, body: int, constants: np.ndarray | None):
        module = native_module()
        if module is None:
            raise RuntimeError("the compiled quadrotor loop is not available")
        if constants is not None and constants.shape != (module.NCONST,):
            raise ValueError(f"rate-controller constants must be ({module.NCONST},), got {constants.shape}")
        self.model, self.data = model, data
        self._keep = (data.qvel, data.ctrl, data.xfrc_applied, constants)  # the buffers the addresses point into
        ctrl = 0 if constants is None else data.ctrl.ctypes.data
        self._fixed = (_mj_step_address(), model._address, data._address, None, data.qvel.ctypes.data, ctrl,
                       data.xfrc_applied[body].ctypes.data, 0 if constants is None else constants.ctypes.data)
        self._run = module.run
        self.run_many = module.run_many
        """``run_many(jobs)``: each job (:meth:`arguments` of this or any env's loop) in order, the GIL released
        once; returns each job's last drag force (3 floats, N). The same function for every env."""

    def arguments(self, nstep: int, thrust: float, rate_cmd: Sequence[float], push: Sequence[float],
                  drag: Sequence[float], wind: Sequence[float]) -> tuple:
        """The compiled loop's arguments for ``nstep`` physics steps (see the module docstring).

        ``thrust`` (N) and ``rate_cmd`` (3,) rad/s are ignored by the drag-only loop.
        """
        step, m, d, _, qvel, ctrl, force, consts = self._fixed
        return (step, m, d, nstep, qvel, ctrl, force, consts, thrust, *rate_cmd, *push, *drag, *wind)

    def __call__(self, nstep: int, thrust: float, rate_cmd: Sequence[float], push: Sequence[float],
                 drag: Sequence[float], wind: Sequence[float]) -> tuple[float, float, float]:
        """``nstep`` physics steps (see the module docstring); returns the last drag force (3 floats, N)."""
        return self._run(*self.arguments(nstep, thrust, rate_cmd, push, drag, wind))
