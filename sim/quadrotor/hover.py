"""``robolearn/QuadHover-v0``: fly to a random target position and hold it under wind gusts.

Each episode starts the Crazyflie at rest at a random position, yaw and small tilt, and draws a target
in the same volume (``spawn_low``..``spawn_high``). Success: the vehicle has stayed within
``tolerance`` (m) of the target for the last ``hold_time`` seconds. The episode is *not* ended by
success by default (``terminate_on_success=False``): it runs to the registry's time limit (truncated),
so a learner is rewarded for holding; ``info["is_success"]`` at the last step says whether it holds.
A crash (floor contact, leaving the arena) ends the episode (terminated, a failure).

Reward terms (``info["reward/<term>"]``): ``proximity`` = ``exp(-distance / 1 m)`` in (0, 1] (scale 1),
``rates`` = ``-|body rates|^2`` (rad^2/s^2, scale 0.002), ``crash`` = 1 on a crash (scale -10),
``distance`` (m, scale 0, logged), ``success``.

Extra observations: ``target_pos (3,)`` m and ``target_rel (3,)`` m (target minus position, world frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from robolearn.sim.quadrotor.base import QuadTaskConfig, QuadTaskEnv


@dataclass
class QuadHoverConfig(QuadTaskConfig):
    """QuadHover-v0 settings (wind on by default)."""

    wind_mean_max: float = 1.0
    """Largest steady wind speed (m/s)."""
    wind_gust_max: float = 2.0
    """Largest gust amplitude (m/s)."""
    tolerance: float = 0.1
    """Success radius around the target (m)."""
    hold_time: float = 1.0
    """Time to stay within ``tolerance`` (s)."""
    spawn_low: tuple[float, float, float] = (-1.0, -1.0, 0.5)
    """Lower corner of the start and target volume (m)."""
    spawn_high: tuple[float, float, float] = (1.0, 1.0, 1.5)
    """Upper corner of the start and target volume (m)."""
    max_initial_tilt: float = 0.15
    """Largest initial roll/pitch (rad)."""


def euler_quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion wxyz ``(4,)`` of intrinsic z-y-x Euler angles (rad)."""
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.array([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy])


class QuadHoverEnv(QuadTaskEnv):
    """Reach and hold a target under wind; see the module docstring."""

    config_class = QuadHoverConfig
    default_reward_scales = {"proximity": 1.0, "rates": -0.002, "crash": -10.0, "success": 0.0}
    default_terminate_on_success = False

    def _add_scene(self, spec: mujoco.MjSpec) -> None:
        target = spec.worldbody.add_body(name="target", pos=[0, 0, 1.0], mocap=True)
        target.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[self.cfg.tolerance, 0, 0],
                        rgba=[0.2, 0.85, 0.3, 0.3], contype=0, conaffinity=0, group=2, density=0.0)

    def _task_observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"target_pos": (3,), "target_rel": (3,)}

    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        cfg = self.cfg
        low, high = np.array(cfg.spawn_low), np.array(cfg.spawn_high)
        if np.any(high < low):
            raise ValueError(f"spawn_high {cfg.spawn_high} must be >= spawn_low {cfg.spawn_low}")
        start = rng.uniform(low, high)
        self._target = rng.uniform(low, high)
        tilt = rng.uniform(-cfg.max_initial_tilt, cfg.max_initial_tilt, 2)
        quat = euler_quat(tilt[0], tilt[1], rng.uniform(-np.pi, np.pi))
        info = self.reset_vehicle(rng, start, quat)
        self.data.mocap_pos[self.model.body("target").mocapid[0]] = self._target
        self._hold_steps = 0
        self._dist = self._distance()
        self._hold_needed = max(1, int(round(cfg.hold_time * self.control_hz)))
        return {**info, "start_pos": start, "target_pos": self._target.copy()}

    def _distance(self) -> float:
        """Distance (m) from the vehicle to the target (``np.linalg.norm``'s arithmetic, without its wrapper)."""
        gap = self._target - self.data.qpos[0:3]
        return math.sqrt(gap.dot(gap))

    def post_step(self):
        self._dist = self._distance()  # once per step: the hold counter and the reward terms read it
        self._hold_steps = self._hold_steps + 1 if self._dist <= self.cfg.tolerance else 0
        obs, reward, terminated, truncated, info = super().post_step()
        info["hold_time"] = self._hold_steps / self.control_hz
        return obs, reward, terminated, truncated, info

    def _observation(self) -> dict[str, np.ndarray]:
        obs = self._vehicle_obs()
        obs["target_pos"] = self._target.astype(np.float32)
        obs["target_rel"] = (self._target - self.data.qpos[0:3]).astype(np.float32)
        return obs

    def _is_success(self) -> bool:
        return self._hold_steps >= self._hold_needed

    def _is_failure(self) -> bool:
        return self.crashed()

    def _reward_terms(self) -> dict[str, float]:
        dist = self._dist
        w = self.data.qvel[3:6]
        return {"proximity": float(np.exp(-dist)), "distance": dist, "rates": -float(w @ w),
                "crash": float(self.crashed())}
