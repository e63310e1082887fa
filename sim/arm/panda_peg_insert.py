"""``robolearn/PandaPegInsert-v0``: insert a held square peg into a hole at a random pose.

The peg (20 x 20 x 80 mm) starts grasped; the hole (22 x 22 mm: 1 mm clearance on each side, 2 mm in
all, 40 mm deep) is placed at a random position and yaw. Success: the peg tip is at least
``INSERT_DEPTH`` (20 mm) below the hole's entrance while inside the hole. Shaped terms (in ``info``):
``align`` = -horizontal distance of peg tip to hole axis (m), ``depth`` = insertion depth (m, >= 0),
``drop`` = 1 when the peg has left the fingers. Dropping the peg ends the episode as a failure.
Extra observations: ``object_pos (3,)`` m and ``object_quat (4,)`` of the peg, ``goal_pos (3,)`` m (hole
entrance centre), ``goal_quat (4,)`` (hole yaw), ``object_to_goal (3,)`` m (peg tip minus entrance).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from robolearn.sim.arm.base import PandaTaskEnv, body_pose, yaw_quat

PEG_HALF = (0.010, 0.010, 0.040)
CLEARANCE = 0.001
"""Gap on each side of the peg (m): 2 mm of total clearance."""
HOLE_DEPTH = 0.040
HOLE_OUTER = 0.05
INSERT_DEPTH = 0.020
HOLE_X = (0.50, 0.62)
HOLE_Y = (-0.12, 0.12)
HOLE_YAW = (-np.pi / 6, np.pi / 6)
START_QPOS = np.array([0.0, -0.35, 0.0, -2.3, 0.0, 1.95, 0.785])
"""Arm start (rad): TCP about 0.49 m forward, 0.25 m up, the peg hanging above the table."""
PEG_IN_HAND = 0.012
"""Peg centre below the TCP (m), along the gripper axis."""


class PandaPegInsertEnv(PandaTaskEnv):
    """Franka Panda inserting a peg; see the module docstring."""

    def _add_objects(self, spec: mujoco.MjSpec) -> None:
        peg = spec.worldbody.add_body(name="peg", pos=[0.5, 0.0, 0.3])
        peg.add_freejoint(name="peg")
        peg.add_geom(name="peg", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(PEG_HALF), mass=0.05,
                     rgba=[0.2, 0.4, 0.85, 1], friction=[1.5, 0.01, 0.001], condim=4)
        hole = spec.worldbody.add_body(name="hole", pos=[0.55, 0.0, 0.0], mocap=True)
        inner = PEG_HALF[0] + CLEARANCE
        half_h = HOLE_DEPTH / 2
        wall = (HOLE_OUTER - inner) / 2
        for k, (dx, dy, sx, sy) in enumerate([
            (inner + wall, 0.0, wall, HOLE_OUTER), (-(inner + wall), 0.0, wall, HOLE_OUTER),
            (0.0, inner + wall, inner, wall), (0.0, -(inner + wall), inner, wall),
        ]):
            hole.add_geom(name=f"hole_wall{k}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[sx, sy, half_h],
                          pos=[dx, dy, half_h], rgba=[0.35, 0.35, 0.38, 1], friction=[0.5, 0.01, 0.001])

    def _task_observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"object_pos": (3,), "object_quat": (4,), "goal_pos": (3,), "goal_quat": (4,),
                "object_to_goal": (3,)}

    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        m, d = self.model, self.data
        x, y, yaw = rng.uniform(*HOLE_X), rng.uniform(*HOLE_Y), rng.uniform(*HOLE_YAW)
        mocap = m.body("hole").mocapid[0]
        d.mocap_pos[mocap] = [x, y, 0.0]
        d.mocap_quat[mocap] = yaw_quat(yaw)
        self._goal = np.array([x, y, HOLE_DEPTH])
        self._goal_quat = yaw_quat(yaw).astype(np.float32)
        self._peg = m.body("peg").id
        self._peg_geom = m.geom("peg").id
        start = START_QPOS + rng.uniform(-0.05, 0.05, 7) * np.array([1, 1, 0, 1, 0, 1, 1])
        self.reset_robot(start, gripper=1.0)
        self._grasp_peg(depth=PEG_IN_HAND + rng.uniform(-0.004, 0.004))
        return {"goal_init_pos": self._goal.copy(), "goal_init_yaw": yaw}

    def _grasp_peg(self, depth: float, settle_steps: int = 200) -> None:
        """Hold the peg in the open fingers kinematically while the gripper closes on it."""
        m, d = self.model, self.data
        adr = m.joint("peg").qposadr[0]
        vadr = m.joint("peg").dofadr[0]
        mujoco.mj_forward(m, d)
        for k in range(settle_steps):
            if k < settle_steps // 2:
                rot = self.tcp_rot()
                quat = np.zeros(4)
                mujoco.mju_mat2Quat(quat, (rot @ np.diag([1.0, -1.0, -1.0])).ravel())
                d.qpos[adr:adr + 3] = self.tcp_pos() + rot[:, 2] * depth
                d.qpos[adr + 3:adr + 7] = quat
                d.qvel[vadr:vadr + 6] = 0.0
            mujoco.mj_step(m, d)
        d.qvel[:] = 0.0

    def peg_tip(self) -> np.ndarray:
        """Bottom centre of the peg (3,) m."""
        return self.data.xpos[self._peg] + self.data.xmat[self._peg].reshape(3, 3) @ np.array(
            [0.0, 0.0, -PEG_HALF[2]]
        )

    def _observation(self) -> dict[str, np.ndarray]:
        pos, quat = body_pose(self.data, self._peg)
        obs = self._proprio()
        obs.update(object_pos=pos, object_quat=quat, goal_pos=self._goal.astype(np.float32),
                   goal_quat=self._goal_quat.copy(), object_to_goal=(self.peg_tip() - self._goal).astype(np.float32))
        return obs

    def _lateral_error(self) -> float:
        return float(np.linalg.norm(self.peg_tip()[:2] - self._goal[:2]))

    def _depth(self) -> float:
        return float(max(0.0, self._goal[2] - self.peg_tip()[2]))

    def _dropped(self) -> bool:
        return bool(np.linalg.norm(self.data.xpos[self._peg] - self.tcp_pos()) > 0.06)

    def _is_success(self) -> bool:
        return self._depth() >= INSERT_DEPTH and self._lateral_error() < PEG_HALF[0] + CLEARANCE

    def _is_failure(self) -> bool:
        return self._dropped()

    def _reward_terms(self) -> dict[str, float]:
        return {"align": -self._lateral_error(), "depth": self._depth(), "drop": float(self._dropped())}

