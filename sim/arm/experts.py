"""Scripted experts for the Panda tasks, as :class:`~robolearn.core.protocols.Policy` objects.

Each expert is a small per-env state machine over the privileged observation, acting in the
``ee_delta`` action space (``(B, 1, 5)`` chunks: dx, dy, dz m; dyaw rad; gripper 0..1).

``noise`` makes demonstrations imperfect, as human ones are: Gaussian action noise with standard
deviation ``noise * max step``, a goal offset of up to ``noise * 1 cm`` resampled each episode, and,
with probability ``noise``, a pause of a few steps at a random moment. ``noise=0`` is the clean expert.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robolearn.sim.arm.controller import yaw_of
from robolearn.sim.arm.panda_lift import CUBE_HALF

MAX_STEP = 0.02
MAX_YAW = 0.15


def _quat_yaw(quat: np.ndarray) -> float:
    """Yaw (rad) of a wxyz quaternion about world z."""
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _ee_yaw(quat: np.ndarray) -> float:
    """Yaw of the downward TCP frame from its wxyz quaternion."""
    w, x, y, z = quat
    xmat = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    return yaw_of(xmat)


def _wrap(angle: float, period: float) -> float:
    """``angle`` wrapped to ``[-period/2, period/2)``."""
    return (angle + period / 2) % period - period / 2


class _ArmExpert:
    """Shared machinery: per-env phase, noise, chunk assembly."""

    noise_shape = None

    def __init__(self, noise: float = 0.0, seed: int | None = 0, num_envs: int = 1):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self._phase: list[int] = []
        self._timer: list[int] = []
        self._offset: list[np.ndarray] = []
        self._pause: list[tuple[int, int]] = []
        self._steps: list[int] = []
        self._integral: list[np.ndarray] = []
        self._grow(num_envs)

    def _grow(self, n: int) -> None:
        while len(self._phase) < n:
            self._phase.append(0)
            self._timer.append(0)
            self._offset.append(np.zeros(3))
            self._pause.append((-1, 0))
            self._steps.append(0)
            self._integral.append(np.zeros(3))
            self._new_episode(len(self._phase) - 1)

    def _new_episode(self, i: int) -> None:
        self._phase[i], self._timer[i], self._steps[i] = 0, 0, 0
        self._integral[i] = np.zeros(3)
        off = self.rng.uniform(-1, 1, 3) * 0.01 * self.noise
        off[2] = abs(off[2]) * 0.5
        self._offset[i] = off
        if self.noise > 0 and self.rng.random() < min(self.noise, 1.0):
            self._pause[i] = (int(self.rng.integers(5, 40)), int(self.rng.integers(3, 10)))
        else:
            self._pause[i] = (-1, 0)

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        ids = range(len(self._phase)) if env_ids is None else [int(i) for i in env_ids]
        for i in ids:
            self._grow(i + 1)
            self._new_episode(i)

    def act(self, obs, noise: np.ndarray | None = None) -> np.ndarray:
        batch = len(obs["ee_pos"])
        self._grow(batch)
        out = np.zeros((batch, 1, 5), np.float32)
        for i in range(batch):
            row = {k: np.asarray(v[i], np.float64) for k, v in obs.items()}
            action = self._act_one(i, row)
            start, length = self._pause[i]
            if start <= self._steps[i] < start + length:
                action[:4] = 0.0
            if self.noise > 0:
                action[:3] += self.rng.normal(0, self.noise * MAX_STEP * 0.5, 3)
                action[3] += self.rng.normal(0, self.noise * MAX_YAW * 0.3)
            self._steps[i] += 1
            out[i, 0] = action
        return out

    def _act_one(self, i: int, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def move(ee: np.ndarray, target: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """A TCP step towards ``target``, clipped to the largest step (m)."""
        step = gain * (target - ee)
        norm = np.linalg.norm(step)
        return step * (MAX_STEP / norm) if norm > MAX_STEP else step

    @staticmethod
    def turn(ee_quat: np.ndarray, yaw_target: float, period: float) -> float:
        """Yaw step (rad) towards ``yaw_target`` modulo ``period`` (the object's symmetry)."""
        err = _wrap(yaw_target - _ee_yaw(ee_quat), period)
        return float(np.clip(err, -MAX_YAW, MAX_YAW))


class LiftExpert(_ArmExpert):
    """Approach above the cube, align yaw, descend, close, lift."""

    def _act_one(self, i: int, obs: dict[str, np.ndarray]) -> np.ndarray:
        ee, cube = obs["ee_pos"], obs["object_pos"] + self._offset[i]
        yaw = self.turn(obs["ee_quat"], _quat_yaw(obs["object_quat"]), np.pi / 2)
        xy_err = np.linalg.norm(cube[:2] - ee[:2])
        phase = self._phase[i]
        grip = 0.0
        if phase == 0:  # above the cube, aligned
            target = np.array([cube[0], cube[1], cube[2] + 0.08])
            if xy_err < 0.01 and abs(yaw) < 0.05 and abs(ee[2] - target[2]) < 0.02:
                self._phase[i] = 1
        elif phase == 1:  # descend around it
            target = np.array([cube[0], cube[1], max(cube[2] - 0.005, CUBE_HALF - 0.005)])
            if abs(ee[2] - target[2]) < 0.008:
                self._phase[i], self._timer[i] = 2, 0
        elif phase == 2:  # close
            target, grip = ee.copy(), 1.0
            self._timer[i] += 1
            if self._timer[i] >= 6 or obs["gripper"][0] > 0.5 and self._timer[i] >= 4:
                self._phase[i] = 3
        else:  # lift above the goal height
            target, grip = np.array([cube[0], cube[1], obs["goal_pos"][2] + 0.04]), 1.0
            target[:2] = ee[:2]
            yaw = 0.0
        action = np.zeros(5)
        action[:3] = self.move(ee, target, gain=1.0)
        action[3] = yaw
        action[4] = grip
        return action


class PegInsertExpert(_ArmExpert):
    """Carry the peg above the hole, align yaw and position, then descend slowly on the hole axis."""

    def _act_one(self, i: int, obs: dict[str, np.ndarray]) -> np.ndarray:
        ee, tip_err = obs["ee_pos"], obs["object_to_goal"] - self._offset[i] * np.array([0.3, 0.3, 0.0])
        yaw = self.turn(obs["ee_quat"], _quat_yaw(obs["goal_quat"]) + (
            _ee_yaw(obs["ee_quat"]) - _quat_yaw(obs["object_quat"])), np.pi / 2)
        lateral = np.linalg.norm(tip_err[:2])
        if lateral < 0.01:  # integral action removes the servo's steady-state sag under the peg's weight
            self._integral[i][:2] = np.clip(self._integral[i][:2] + 0.3 * tip_err[:2], -0.01, 0.01)
        tip_err = tip_err + self._integral[i]
        phase = self._phase[i]
        if phase == 0:  # tip 3 cm above the entrance, on the axis, aligned
            target = ee - tip_err + np.array([0.0, 0.0, 0.03])
            if lateral < 0.0015 and abs(yaw) < 0.02 and abs(tip_err[2] - 0.03) < 0.01:
                self._phase[i] = 1
            step = self.move(ee, target, gain=1.0)
        else:  # descend slowly while correcting the axis
            if lateral > 0.004 and tip_err[2] > -0.003:
                self._phase[i] = 0
            target = ee - tip_err - np.array([0.0, 0.0, 0.035])
            target[2] = ee[2] - 0.006
            step = self.move(ee, target, gain=1.0)
        return np.array([*step, yaw, 1.0])
