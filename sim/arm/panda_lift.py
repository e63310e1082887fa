"""``robolearn/PandaLift-v0``: grasp a 4 cm cube placed at a random pose and lift it 10 cm.

Success: the cube's centre is at least ``lift_height`` (0.10 m) above its resting height. Shaped
terms (in ``info`` as ``reward/<term>``, scale 0 unless configured): ``reach`` = -|TCP - cube| (m),
``grasp`` = 1 when both fingers touch the cube, ``lift`` = cube height gained (m, capped at the goal).
Extra observations: ``object_pos (3,)`` m, ``object_quat (4,)``, ``goal_pos (3,)`` m (cube centre at
success height), ``object_to_ee (3,)`` m (cube minus TCP).
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np

from robolearn.sim.arm.base import PandaTaskEnv, body_pose, yaw_quat
from robolearn.sim.robots import panda

CUBE_HALF = 0.02
LIFT_HEIGHT = 0.10
CUBE_X = (0.45, 0.62)
CUBE_Y = (-0.15, 0.15)
CUBE_YAW = (-np.pi / 4, np.pi / 4)


class PandaLiftEnv(PandaTaskEnv):
    """Franka Panda lifting a cube; see the module docstring."""

    def _add_objects(self, spec: mujoco.MjSpec) -> None:
        cube = spec.worldbody.add_body(name="cube", pos=[0.5, 0.0, CUBE_HALF])
        cube.add_freejoint(name="cube")
        cube.add_geom(
            name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF] * 3, mass=0.08,
            rgba=[0.85, 0.2, 0.2, 1], friction=[1.2, 0.01, 0.001], condim=4,
        )
        goal = spec.worldbody.add_body(name="goal", pos=[0.5, 0.0, CUBE_HALF + LIFT_HEIGHT], mocap=True)
        goal.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.008, 0, 0], rgba=[0.2, 0.8, 0.2, 0.5],
                      contype=0, conaffinity=0, group=2)

    def _task_observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"object_pos": (3,), "object_quat": (4,), "goal_pos": (3,), "object_to_ee": (3,)}

    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        m, d = self.model, self.data
        self.reset_robot(panda.HOME_QPOS, gripper=0.0)
        x, y, yaw = rng.uniform(CUBE_X[0], CUBE_X[1]), rng.uniform(*CUBE_Y), rng.uniform(*CUBE_YAW)
        adr = m.joint("cube").qposadr[0]
        d.qpos[adr:adr + 7] = [x, y, CUBE_HALF, *yaw_quat(yaw)]
        self._goal = np.array([x, y, CUBE_HALF + LIFT_HEIGHT])
        self._goal32 = self._goal.astype(np.float32)
        d.mocap_pos[m.body("goal").mocapid[0]] = self._goal
        self._cube = m.body("cube").id
        self._cube_geom = m.geom("cube").id
        self._pads = self._finger_geoms()
        self._pad_side = [1 if g in self._pads[0] else 2 if g in self._pads[1] else 0 for g in range(m.ngeom)]
        return {"object_init_pos": np.array([x, y, CUBE_HALF]), "object_init_yaw": yaw}

    def _finger_geoms(self) -> tuple[set[int], set[int]]:
        """Geoms of the left and right finger pads (for the grasp term)."""
        m = self.model
        sides = []
        for side in ("left", "right"):
            bodies = {m.body(n).id for n in (f"{side}_pad", f"{side}_silicone_pad", f"{side}_follower")
                      if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) >= 0}
            sides.append({g for g in range(m.ngeom) if m.geom_bodyid[g] in bodies})
        return sides[0], sides[1]

    def is_grasped(self) -> bool:
        """Both fingers touch the cube."""
        cube, side = self._cube_geom, self._pad_side
        touching = [False, False, False]  # [other geom, left pad, right pad]
        for g1, g2 in self.data.contact.geom.tolist():  # (ncon, 2) geom ids; tolist beats a struct loop
            if g1 == cube:
                touching[side[g2]] = True
            elif g2 == cube:
                touching[side[g1]] = True
        return touching[1] and touching[2]

    def _observation(self) -> dict[str, np.ndarray]:
        pos, quat = body_pose(self.data, self._cube)
        obs = self._proprio()
        # Fresh arrays each step: observation noise is added to them in place.
        obs.update(object_pos=pos, object_quat=quat, goal_pos=self._goal32.copy(), object_to_ee=pos - obs["ee_pos"])
        return obs

    def _is_success(self) -> bool:
        return bool(self.data.xpos[self._cube][2] >= CUBE_HALF + LIFT_HEIGHT - 1e-3)

    def _reward_terms(self) -> dict[str, float]:
        cube = self.data.xpos[self._cube]
        gap = cube - self.data.site_xpos[self._tcp]
        return {
            "reach": -math.sqrt(gap.dot(gap)),  # np.linalg.norm of a vector, without its wrapper
            "grasp": float(self.is_grasped()),
            "lift": min(max(float(cube[2]) - CUBE_HALF, 0.0), LIFT_HEIGHT),
        }
