"""The scripted expert of ``robolearn/G1BimanualLift-v0``: Cartesian waypoints for both palms, solved to
joint targets by damped-least-squares inverse kinematics on MuJoCo Jacobians.

The expert keeps its own kinematic copy of the fixed-pelvis G1 (the same builder as the env) and the
*commanded* arm configuration ``q_cmd``; each control step it moves both commanded palm positions towards
the current waypoint (at most ``MAX_PALM_STEP`` m per step), with the palm planes parallel to the box's
side faces, and iterates IK from ``q_cmd``. Commanding the palms 2 cm inside the box during the squeeze is
what produces the grip force (the position servos push against the box).

Phases: 0 palms 6 cm outside the box's side faces; 1 squeeze (palms 2 cm inside the faces) and wait;
2 lift the palms ``lift_height + 3 cm``.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from robolearn.sim.humanoid import g1_model
from robolearn.sim.humanoid.bimanual_lift import ARM_JOINTS, PELVIS_POS
from robolearn.sim.humanoid.common import JointIndex, quat_to_mat

MAX_PALM_STEP = 0.012
"""Largest change of a commanded palm position per control step (m); 0.3 m/s at 25 Hz."""
CLEARANCE = 0.06
"""Palm distance outside the box faces before the squeeze (m)."""
SQUEEZE = 0.02
"""How far inside the box faces the palms are commanded while holding it (m)."""
SQUEEZE_STEPS = 6
"""Control steps to wait in the squeeze before lifting."""


class G1BimanualLiftExpert:
    """A :class:`~robolearn.core.protocols.Policy` for G1BimanualLift; ``act`` returns ``(B, 1, 14)`` rad."""

    noise_shape = None

    def __init__(self, noise: float = 0.0, seed: int | None = 0):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        spec = mujoco.MjSpec()
        g1_model.build_g1(spec, floating=False, pelvis_pos=PELVIS_POS)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.arm = JointIndex.of(self.model, ARM_JOINTS)
        self._sides = (JointIndex.of(self.model, g1_model.LEFT_ARM), JointIndex.of(self.model, g1_model.RIGHT_ARM))
        self._palms = (self.model.site("left_palm").id, self.model.site("right_palm").id)
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))
        self._state: list[dict] = []

    # ----------------------------------------------------------------- Policy API
    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        ids = range(len(self._state)) if env_ids is None else [int(i) for i in env_ids]
        for i in ids:
            self._grow(i + 1)
            self._state[i] = self._new_state()

    def act(self, obs, noise: np.ndarray | None = None) -> np.ndarray:
        """Joint targets ``(B, 1, 14)`` float32 rad for a batch of G1BimanualLift observations."""
        batch = len(obs["joint_pos"])
        self._grow(batch)
        out = np.zeros((batch, 1, len(ARM_JOINTS)), np.float32)
        for i in range(batch):
            row = {k: np.asarray(v[i], np.float64) for k, v in obs.items()}
            out[i, 0] = self._act_one(self._state[i], row)
        return out

    # ----------------------------------------------------------------- internals
    def _new_state(self) -> dict:
        offset = self.rng.uniform(-1, 1, 3) * 0.01 * self.noise
        return {"phase": 0, "timer": 0, "q_cmd": None, "palm_cmd": None, "offset": offset}

    def _grow(self, n: int) -> None:
        while len(self._state) < n:
            self._state.append(self._new_state())

    def _waypoints(self, st: dict, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Palm targets (2, 3) m and the palm orientation target (3, 3) for the current phase."""
        rot = quat_to_mat(obs["object_quat"])
        centre = obs["object_pos"] + st["offset"]
        half_w = float(obs["object_size"][1])
        lateral = rot[:, 1]
        heading = np.arctan2(rot[1, 0], rot[0, 0])
        target_rot = np.array([[np.cos(heading), -np.sin(heading), 0], [np.sin(heading), np.cos(heading), 0],
                               [0, 0, 1]])
        if st["phase"] == 0:
            out = half_w + CLEARANCE
        else:
            out = half_w - SQUEEZE
        base = centre.copy()
        if st["phase"] == 2:
            base = np.array([centre[0], centre[1], obs["goal_pos"][2] + 0.03])
            base[:2] = st["lift_xy"]
        return np.stack([base + lateral * out, base - lateral * out]), target_rot

    def _act_one(self, st: dict, obs: dict[str, np.ndarray]) -> np.ndarray:
        if st["q_cmd"] is None:
            st["q_cmd"] = obs["joint_pos"].copy()
            st["palm_cmd"] = np.stack([obs["left_palm_pos"], obs["right_palm_pos"]])
        targets, target_rot = self._waypoints(st, obs)
        delta = targets - st["palm_cmd"]
        norms = np.linalg.norm(delta, axis=1, keepdims=True)
        st["palm_cmd"] = st["palm_cmd"] + delta * np.minimum(1.0, MAX_PALM_STEP / np.maximum(norms, 1e-9))
        reached = bool(np.all(norms < 1e-3))
        st["q_cmd"] = self._solve_ik(st["q_cmd"], st["palm_cmd"], target_rot)
        actual = np.stack([obs["left_palm_pos"], obs["right_palm_pos"]])
        if st["phase"] == 0 and reached and np.all(np.linalg.norm(actual - targets, axis=1) < 0.02):
            st["phase"] = 1
        elif st["phase"] == 1 and reached:
            st["timer"] += 1
            if st["timer"] >= SQUEEZE_STEPS:
                st["phase"], st["lift_xy"] = 2, obs["object_pos"][:2].copy()
        q = st["q_cmd"].copy()
        if self.noise > 0:
            q += self.rng.normal(0.0, 0.02 * self.noise, q.shape)
        return q

    def _solve_ik(self, q: np.ndarray, palm_targets: np.ndarray, target_rot: np.ndarray, iters: int = 4,
                  damping: float = 0.03, rot_weight: float = 0.3) -> np.ndarray:
        """Arm joints (14,) rad bringing both palm sites to ``palm_targets`` (2, 3) m, planes ``target_rot``."""
        m, d = self.model, self.data
        d.qpos[self.arm.qpos] = q
        for _ in range(iters):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            for side, site, target in zip(self._sides, self._palms, palm_targets, strict=True):
                mujoco.mj_jacSite(m, d, self._jacp, self._jacr, site)
                cur_rot = d.site_xmat[site].reshape(3, 3)
                err_rot = 0.5 * sum(np.cross(cur_rot[:, k], target_rot[:, k]) for k in range(3))
                err = np.concatenate([target - d.site_xpos[site], rot_weight * err_rot])
                jac = np.vstack([self._jacp[:, side.dof], rot_weight * self._jacr[:, side.dof]])
                dq = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), err)
                d.qpos[side.qpos] = np.clip(d.qpos[side.qpos] + dq, side.low, side.high)
        return d.qpos[self.arm.qpos].copy()
