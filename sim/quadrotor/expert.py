"""Scripted quadrotor experts: cascaded position -> attitude controllers over the rates action space.

Both experts are batched :class:`~robolearn.core.protocols.Policy` objects returning ``(B, 1, 4)`` float32
chunks ``[T (N), p, q, r (rad/s)]`` for ``action_mode="rates"`` (the default). The cascade is:

1. an outer loop producing a desired acceleration ``a_cmd (B, 3)`` m/s^2 (world frame) from a smooth
   reference (hover: a minimum-jerk trajectory from the start to the target; gates: a pure-pursuit
   velocity reference along each gate's axis);
2. a reduced-attitude controller that prioritises the thrust direction over yaw (as PX4 does): the
   desired thrust axis ``b3d = m (a_cmd + g e3) / |.|`` (tilt-limited); roll/pitch rate commands are
   ``K * R^T (b3 x b3d)`` (the body z axis rotated onto ``b3d``), the yaw rate command is
   ``K_yaw * wrap(yaw_d - yaw)``, and the collective thrust is the projection of the thrust vector on
   the current body z axis.

The experts assume the nominal Crazyflie (:data:`~robolearn.sim.quadrotor.model.CRAZYFLIE`) and the
env's default 50 Hz control rate (``control_hz``); they do not see wind or randomized parameters and an
integral term absorbs the bias. ``noise`` adds Gaussian action noise with standard deviations
``noise * (0.03 N, 1, 1, 0.5 rad/s)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robolearn.core.protocols import Obs
from robolearn.sim.quadrotor.model import CRAZYFLIE, GRAVITY

NOISE_STD = np.array([0.03, 1.0, 1.0, 0.5])
"""Action noise per unit ``noise`` (N, rad/s, rad/s, rad/s)."""


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(B, 3, 3)`` (body to world) of wxyz quaternions ``(B, 4)``."""
    q = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def attitude_command(acc: np.ndarray, quat: np.ndarray, yaw: np.ndarray, max_tilt: float,
                     gains: tuple[float, float, float] = (12.0, 12.0, 4.0),
                     max_rates: tuple[float, float, float] = (10.0, 10.0, 5.0)) -> np.ndarray:
    """Rates-mode actions ``(B, 4)`` that realise accelerations ``acc (B, 3)`` m/s^2 with yaw ``(B,)`` rad.

    ``max_tilt`` (rad) limits the angle between the thrust and world z by shortening the horizontal
    part of the thrust vector.
    """
    force = CRAZYFLIE.mass * (acc + np.array([0.0, 0.0, GRAVITY]))
    force[:, 2] = np.maximum(force[:, 2], 0.2 * CRAZYFLIE.hover_thrust)
    horiz = np.linalg.norm(force[:, :2], axis=1)
    limit = force[:, 2] * np.tan(max_tilt)
    scale = np.where(horiz > limit, limit / np.maximum(horiz, 1e-9), 1.0)
    force[:, :2] *= scale[:, None]
    rot = quat_to_mat(quat)
    b3 = rot[:, :, 2]
    thrust = np.einsum("bi,bi->b", force, b3)
    b3d = force / np.linalg.norm(force, axis=1, keepdims=True)
    # Reduced attitude first: rotate the thrust axis onto b3d (world vector -> body frame) ...
    tilt = np.einsum("bji,bj->bi", rot, np.cross(b3, b3d))
    # ... and yaw separately, so a large heading error never disturbs the thrust direction.
    yaw_err = (yaw - np.arctan2(rot[:, 1, 0], rot[:, 0, 0]) + np.pi) % (2 * np.pi) - np.pi
    k = np.asarray(gains)
    rates = np.stack([k[0] * tilt[:, 0], k[1] * tilt[:, 1], k[2] * yaw_err], 1)
    rates = np.clip(rates, -np.asarray(max_rates), np.asarray(max_rates))
    thrust = np.clip(thrust, 0.0, 4 * CRAZYFLIE.max_motor_thrust)
    return np.concatenate([thrust[:, None], rates], axis=1)


class _QuadExpert:
    """Per-env state, noise and chunk assembly shared by the experts."""

    noise_shape = None

    def __init__(self, noise: float = 0.0, seed: int | None = 0, control_hz: float = 50.0):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        if control_hz <= 0:
            raise ValueError(f"control_hz must be positive, got {control_hz}")
        self.noise = float(noise)
        self.dt = 1.0 / control_hz
        self.rng = np.random.default_rng(seed)
        self._fresh = np.zeros(0, bool)
        self._time = np.zeros(0)
        self._integral = np.zeros((0, 3))

    def _grow(self, n: int) -> None:
        if n > len(self._fresh):
            extra = n - len(self._fresh)
            self._fresh = np.concatenate([self._fresh, np.ones(extra, bool)])
            self._time = np.concatenate([self._time, np.zeros(extra)])
            self._integral = np.concatenate([self._integral, np.zeros((extra, 3))])

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        ids = np.arange(len(self._fresh)) if env_ids is None else np.asarray(env_ids, int)
        if len(ids):
            self._grow(int(ids.max()) + 1)
        self._fresh[ids] = True
        self._time[ids] = 0.0
        self._integral[ids] = 0.0

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        """Actions ``(B, 1, 4)`` float32 ``[T N, p, q, r rad/s]`` for a batch of observations."""
        o = {k: np.asarray(v, np.float64) for k, v in obs.items()}
        batch = len(o["position"])
        self._grow(batch)
        action = self._act(o, batch)
        self._fresh[:batch] = False
        self._time[:batch] += self.dt
        if self.noise > 0:
            action = action + self.rng.normal(0.0, 1.0, action.shape) * NOISE_STD * self.noise
        return action[:, None, :].astype(np.float32)

    def _act(self, obs: dict[str, np.ndarray], batch: int) -> np.ndarray:
        raise NotImplementedError


class HoverExpert(_QuadExpert):
    """Minimum-jerk flight from the first observed position to the target, then PID position hold."""

    peak_speed = 1.5
    """Peak speed of the reference (m/s)."""
    kp, kd, ki = 10.0, 5.5, 4.0
    """Position PID gains (1/s^2, 1/s, 1/s^3)."""
    max_tilt = np.deg2rad(40.0)

    def __init__(self, noise: float = 0.0, seed: int | None = 0, control_hz: float = 50.0):
        super().__init__(noise, seed, control_hz)
        self._start = np.zeros((0, 3))
        self._duration = np.zeros(0)

    def _grow(self, n: int) -> None:
        extra = n - len(self._fresh)
        super()._grow(n)
        if extra > 0:
            self._start = np.concatenate([self._start, np.zeros((extra, 3))])
            self._duration = np.concatenate([self._duration, np.ones(extra)])

    def reference(self, target: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Minimum-jerk position, velocity, acceleration ``(B, 3)`` (m, m/s, m/s^2) at the current time."""
        dur = self._duration[:batch, None]
        s = np.clip(self._time[:batch, None] / dur, 0.0, 1.0)
        delta = target - self._start[:batch]
        pos = self._start[:batch] + delta * (10 * s**3 - 15 * s**4 + 6 * s**5)
        vel = delta * (30 * s**2 - 60 * s**3 + 30 * s**4) / dur
        acc = delta * (60 * s - 180 * s**2 + 120 * s**3) / dur**2
        return pos, vel, acc

    def _act(self, obs: dict[str, np.ndarray], batch: int) -> np.ndarray:
        pos, vel, target = obs["position"], obs["velocity"], obs["target_pos"]
        fresh = self._fresh[:batch]
        if fresh.any():
            self._start[:batch][fresh] = pos[fresh]
            dist = np.linalg.norm(target[fresh] - pos[fresh], axis=1)
            self._duration[:batch][fresh] = np.maximum(1.0, 1.875 * dist / self.peak_speed)
        p_ref, v_ref, a_ref = self.reference(target, batch)
        err = p_ref - pos
        integral = self._integral[:batch]
        integral[:] = np.clip(integral + err * self.dt, -0.15, 0.15)
        acc = a_ref + self.kp * err + self.kd * (v_ref - vel) + self.ki * integral
        return attitude_command(acc, obs["attitude"], np.zeros(batch), self.max_tilt)


class GatesExpert(_QuadExpert):
    """Pure pursuit along each gate's axis at a cruise speed, with a velocity loop.

    In the frame of the next gate (centre ``g``, unit normal ``n`` pointing through it), with
    ``s = (p - g) . n`` (negative before the gate) and lateral offset ``e = (p - g) - s n``, the
    velocity reference is ``speed * unit(max((1 - lam) |s|, l_min) n - e)``: the vehicle steers onto
    the axis while closing in and crosses the gate on it. Speed drops when the heading must turn.
    """

    speed = 3.0
    """Cruise speed (m/s)."""
    lam, l_min = 0.5, 0.6
    """Pursuit aim fraction and shortest look-ahead (m)."""
    kv, ki = 5.0, 1.0
    """Velocity loop gains (1/s, 1/s^2)."""
    max_acc = 14.0
    """Largest commanded acceleration (m/s^2)."""
    max_tilt = np.deg2rad(60.0)

    def _act(self, obs: dict[str, np.ndarray], batch: int) -> np.ndarray:
        vel, normal = obs["velocity"], obs["gate_normal"]
        rel = -obs["gate_rel"]  # p - g
        s = np.einsum("bi,bi->b", rel, normal)
        lateral = rel - s[:, None] * normal
        ahead = np.maximum((1.0 - self.lam) * np.maximum(-s, 0.0), self.l_min)
        direction = ahead[:, None] * normal - lateral
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        speed = self.speed * (0.5 + 0.5 * np.clip(np.einsum("bi,bi->b", direction, normal), 0.0, 1.0))
        v_ref = direction * speed[:, None]
        err = v_ref - vel
        integral = self._integral[:batch]
        integral[:] = np.clip(integral + err * self.dt, -0.5, 0.5)
        acc = self.kv * err + self.ki * integral
        norm = np.linalg.norm(acc, axis=1, keepdims=True)
        acc *= np.minimum(1.0, self.max_acc / np.maximum(norm, 1e-9))
        yaw = np.arctan2(normal[:, 1], normal[:, 0])
        return attitude_command(acc, obs["attitude"], yaw, self.max_tilt)
