"""The inner body-rate controller and motor mixer, run at the physics rate (as PX4/Betaflight do).

Given a collective thrust command ``T`` (N) and body-rate commands ``omega_cmd`` (rad/s, body frame),
each physics step computes the torque

    tau = J * K * (omega_cmd - omega) + omega x (J omega)        (N m)

(a proportional rate loop with inertia feed-forward of the gyroscopic term, using the *nominal*
inertia ``J``), maps ``[T, tau]`` to four rotor thrusts with the inverse allocation matrix, and
desaturates: if a rotor would exceed its maximum, all four are lowered by the excess (torques are kept,
collective thrust gives way), then thrusts are clipped to ``[0, f_max]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from robolearn.sim.quadrotor.model import QuadrotorParams


class RateController:
    """P rate loop + mixer of one quadrotor.

    Args:
        params: the nominal vehicle (inertia, geometry, rotor limits) the controller is tuned for.
        gains: rate-loop bandwidths ``(3,)`` about body x, y, z (1/s).
    """

    def __init__(self, params: QuadrotorParams, gains: tuple[float, float, float]):
        if min(gains) <= 0:
            raise ValueError(f"rate gains must be positive, got {gains}")
        self.inertia = np.asarray(params.inertia, dtype=np.float64)
        self.jk = self.inertia * np.asarray(gains, dtype=np.float64)
        mix = np.linalg.inv(params.allocation())
        self._rows = [tuple(float(x) for x in row) for row in mix]
        self._jk = tuple(float(x) for x in self.jk)
        self.f_max = params.max_motor_thrust
        ix, iy, iz = params.inertia
        self._gyro = (iz - iy, ix - iz, iy - ix)

    def native_constants(self) -> np.ndarray:
        """The constants the compiled loop reads ``(23,)`` float64: ``J K`` (3), the gyroscopic factors (3),
        the mixer rows (4x4, row-major: thrust, tau_x, tau_y, tau_z coefficient of each rotor), ``f_max`` (N)."""
        return np.array([*self._jk, *self._gyro, *(x for row in self._rows for x in row), self.f_max], np.float64)

    def motor_thrusts(self, thrust: float, rate_cmd: tuple[float, float, float],
                      rates: list[float]) -> list[float]:
        """Rotor thrust commands (4 floats, N) for collective ``thrust`` (N), ``rate_cmd`` and ``rates`` (rad/s).

        Plain float arithmetic: at 4x4 this is several times faster than numpy's per-call overhead,
        and it runs at every physics step.
        """
        wx, wy, wz = rates
        gx, gy, gz = self._gyro
        kx, ky, kz = self._jk
        tx = kx * (rate_cmd[0] - wx) + gx * wy * wz  # J K (omega_cmd - omega) + omega x (J omega)
        ty = ky * (rate_cmd[1] - wy) + gy * wz * wx
        tz = kz * (rate_cmd[2] - wz) + gz * wx * wy
        f = [a * thrust + b * tx + c * ty + e * tz for a, b, c, e in self._rows]
        excess = max(f) - self.f_max
        if excess > 0.0:
            f = [x - excess for x in f]
        return [x if x > 0.0 else 0.0 for x in f]

    def motor_thrusts_array(self, thrust: float, rate_cmd: np.ndarray, rates: np.ndarray) -> np.ndarray:
        """:meth:`motor_thrusts` for arrays: ``rate_cmd`` and ``rates`` ``(3,)`` rad/s -> thrusts ``(4,)`` N."""
        return np.array(self.motor_thrusts(float(thrust), tuple(np.asarray(rate_cmd, float).tolist()),
                                           np.asarray(rates, float).tolist()))

    def step_physics(self, model: mujoco.MjModel, data: mujoco.MjData, nstep: int, thrust: float,
                     rate_cmd: Sequence[float], force: np.ndarray, push: Sequence[float], drag: Sequence[float],
                     wind: Sequence[float]) -> tuple[float, float, float]:
        """``nstep`` physics steps, each with this rate loop on ``data.ctrl[:4]`` and the wind drag on ``force``.

        Before each ``mj_step``: rotor thrusts (N) from :meth:`motor_thrusts` for collective ``thrust`` (N),
        ``rate_cmd`` (3,) rad/s and the body rates ``data.qvel[3:6]`` (rad/s); and ``force[:3] = push +
        drag * (wind - data.qvel[0:3])`` (N), with ``force`` the vehicle's ``xfrc_applied`` row ``(6,)``,
        ``push`` (3,) N, ``drag`` (3,) N/(m/s) and ``wind`` (3,) m/s.

        The same float operations in the same order as :meth:`motor_thrusts`, written out once with the
        per-control-step products hoisted: the Python around each physics step is a few dozen float
        operations, one ``tolist`` of a state view and item stores through memoryviews (no array
        conversion). Returns the last drag force (3 floats, N). The Python reference of the compiled loop
        (:mod:`robolearn.sim.quadrotor.substeps`).
        """
        gx, gy, gz = self._gyro
        kx, ky, kz = self._jk
        cx, cy, cz = rate_cmd
        (a0, b0, c0, e0), (a1, b1, c1, e1), (a2, b2, c2, e2), (a3, b3, c3, e3) = self._rows
        t0, t1, t2, t3 = a0 * thrust, a1 * thrust, a2 * thrust, a3 * thrust
        px, py, pz = push
        dx, dy, dz = drag
        ux, uy, uz = wind
        f_max = self.f_max
        qvel, ctrl, out, step = data.qvel[0:6], memoryview(data.ctrl), memoryview(force), mujoco.mj_step
        fx = fy = fz = 0.0
        for _ in range(nstep):
            vx, vy, vz, wx, wy, wz = qvel.tolist()
            tx = kx * (cx - wx) + gx * wy * wz
            ty = ky * (cy - wy) + gy * wz * wx
            tz = kz * (cz - wz) + gz * wx * wy
            f0 = t0 + b0 * tx + c0 * ty + e0 * tz
            f1 = t1 + b1 * tx + c1 * ty + e1 * tz
            f2 = t2 + b2 * tx + c2 * ty + e2 * tz
            f3 = t3 + b3 * tx + c3 * ty + e3 * tz
            excess = max(f0, f1, f2, f3) - f_max
            if excess > 0.0:
                f0, f1, f2, f3 = f0 - excess, f1 - excess, f2 - excess, f3 - excess
            ctrl[0] = f0 if f0 > 0.0 else 0.0
            ctrl[1] = f1 if f1 > 0.0 else 0.0
            ctrl[2] = f2 if f2 > 0.0 else 0.0
            ctrl[3] = f3 if f3 > 0.0 else 0.0
            fx, fy, fz = dx * (ux - vx), dy * (uy - vy), dz * (uz - vz)
            out[0], out[1], out[2] = px + fx, py + fy, pz + fz
            step(model, data)
        return fx, fy, fz
