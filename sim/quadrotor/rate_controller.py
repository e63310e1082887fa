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
