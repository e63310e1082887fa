"""``robolearn/G1BimanualLift-v0``: the G1 squeezes a box on a table between its palms and lifts it.

The pelvis is **fixed** (welded to the world at standing height, legs held in the standing posture by
their servos), so the task is pure bimanual manipulation; the arm links have gravity compensation.

Action, float32 ``(14,)``: absolute joint-position targets (rad) of the left then right arm joints
(shoulder pitch/roll/yaw, elbow, wrist roll/pitch/yaw), bounded by the joint ranges; MuJoCo position
actuators track them at the physics rate (500 Hz) while the policy runs at ``control_hz`` (25 Hz).

Observation, a dict of float32 arrays (world frame, m; the pelvis is at :data:`PELVIS_POS`):
``joint_pos (14,)`` rad, ``joint_vel (14,)`` rad/s, ``left_palm_pos (3,)``, ``right_palm_pos (3,)``,
``object_pos (3,)``, ``object_quat (4,)`` wxyz, ``object_size (3,)`` box half extents, ``goal_pos (3,)``
(box centre at success height).

Success: the box centre is ``lift_height`` above its resting height while both palms touch it. Failure
(terminated): the box falls below the table top. Shaped terms in ``info`` (``reward/<term>``, scale 0
unless configured): ``reach`` = -(sum of palm-to-box-side distances) (m), ``grasp`` = 1 when both palms
touch the box, ``lift`` = box height gained (m, capped at ``lift_height``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.core.protocols import Feature
from robolearn.sim.humanoid import g1_model
from robolearn.sim.humanoid.common import JointIndex, make_config, yaw_quat
from robolearn.sim.mujoco_env import MujocoTaskEnv, box

ARM_JOINTS = (*g1_model.LEFT_ARM, *g1_model.RIGHT_ARM)
PELVIS_POS = (0.0, 0.0, 0.725)
"""Fixed pelvis position (m): the standing height with the feet on the floor."""
ARM_READY = {"shoulder_pitch": 0.1, "shoulder_roll": 0.35, "elbow": 0.0}
"""Arm posture at reset (rad; roll mirrored on the right): forearms forward, palms above the table edge,
about 0.2 m outside the box's side faces."""
TABLE_TOP = 0.72
"""Table top height (m)."""
TABLE_CENTER_X = 0.50
TABLE_HALF = (0.28, 0.40)
"""Table top half extents in x and y (m); its front edge is at x = 0.22 m."""


@dataclass
class G1BimanualLiftConfig:
    """Settings of G1BimanualLift (``gymnasium.make(id, **kwargs)`` or ``config=``)."""

    control_hz: float = 25.0
    """Policy rate (Hz)."""
    physics_hz: float = 500.0
    """Physics rate (Hz); a multiple of control_hz."""
    box_x: tuple[float, float] = (0.29, 0.33)
    """Range of the box centre's x (m, forward of the pelvis)."""
    box_y: tuple[float, float] = (-0.04, 0.04)
    """Range of the box centre's y (m)."""
    box_yaw: tuple[float, float] = (-0.15, 0.15)
    """Range of the box yaw (rad)."""
    box_half_width: tuple[float, float] = (0.10, 0.12)
    """Range of the box half extent along y, between the palms (m)."""
    box_mass: float = 0.6
    """Box mass (kg)."""
    lift_height: float = 0.10
    """Height gain (m) that counts as success."""
    reward_scales: dict[str, float] = field(default_factory=lambda: {"success": 1.0})
    """Scale of each named reward term (sparse success by default; the others are still in info)."""
    terminate_on_success: bool = True
    """End the episode (terminated=True) on success."""
    target_lead_limit: float = 0.0
    """Largest lead of an arm joint target over the measured joint position (rad); a larger lead is clipped to it
    when the action is applied, as the deploy safety layer does (its humanoid ``max_step``, 0.5 rad). 0: no
    limit. Refining under it keeps a policy from relying on targets the real robot's safety layer would cut."""


class G1BimanualLiftEnv(MujocoTaskEnv):
    """The fixed-pelvis G1 lifting a box with both palms; see the module docstring."""

    push_body = "torso_link"
    """Body that the generic randomization pushes act on."""

    def __init__(self, config: G1BimanualLiftConfig | dict[str, Any] | None = None, render_mode: str | None = None,
                 camera: str = "front", width: int = 256, height: int = 256, randomization: Any = None,
                 pixels: Any = None, visual: Any = None,
                 **overrides: Any):
        self.cfg = make_config(G1BimanualLiftConfig, config, overrides, "G1BimanualLift")
        if self.cfg.target_lead_limit < 0:
            raise ValueError(f"G1BimanualLift: target_lead_limit must be >= 0 rad (0: no limit), "
                             f"got {self.cfg.target_lead_limit}")
        self.control_hz, self.physics_hz = self.cfg.control_hz, self.cfg.physics_hz
        self.terminate_on_success = self.cfg.terminate_on_success
        self.reward_scales = dict(self.cfg.reward_scales)
        super().__init__(render_mode=render_mode, camera=camera, width=width, height=height,
                         randomization=randomization, pixels=pixels, visual=visual)
        m = self.model
        self.arm = JointIndex.of(m, ARM_JOINTS)
        self.all = JointIndex.of(m, g1_model.ALL_JOINTS)
        self._stand = g1_model.stand_qpos()
        for i, name in enumerate(g1_model.ALL_JOINTS):
            kind = g1_model.joint_kind(name)
            if name in ARM_JOINTS and kind in ARM_READY:
                self._stand[i] = ARM_READY[kind] * (-1 if name.startswith("right_") and kind.endswith("roll") else 1)
        self._arm_home = self._stand[[g1_model.ALL_JOINTS.index(j) for j in ARM_JOINTS]]
        self._palms = (m.site("left_palm").id, m.site("right_palm").id)
        self._palm_geoms = (m.geom("left_palm").id, m.geom("right_palm").id)
        self._box, self._box_geom = m.body("box").id, m.geom("box").id
        self._box_qpos = m.joint("box").qposadr[0]
        self.action_space = gym.spaces.Box(self.arm.low.astype(np.float32), self.arm.high.astype(np.float32),
                                           dtype=np.float32)
        self.observation_space = gym.spaces.Dict({k: box(s) for k, s in self._shapes().items()})
        self._rest_z = TABLE_TOP + 0.08
        self._goal = np.zeros(3)

    @staticmethod
    def _shapes() -> dict[str, tuple[int, ...]]:
        return {"joint_pos": (14,), "joint_vel": (14,), "left_palm_pos": (3,), "right_palm_pos": (3,),
                "object_pos": (3,), "object_quat": (4,), "object_size": (3,), "goal_pos": (3,)}

    # ----------------------------------------------------------------- scene
    def _build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        g1_model.add_ground(spec)
        g1_model.build_g1(spec, floating=False, pelvis_pos=PELVIS_POS, arm_gravcomp=True)
        world = spec.worldbody
        hx, hy = TABLE_HALF
        world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, 0.02],
                       pos=[TABLE_CENTER_X, 0, TABLE_TOP - 0.02], rgba=[0.55, 0.45, 0.35, 1])
        for sx in (-1, 1):
            for sy in (-1, 1):
                world.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.02, 0.02, (TABLE_TOP - 0.04) / 2],
                               pos=[TABLE_CENTER_X + sx * (hx - 0.03), sy * (hy - 0.03), (TABLE_TOP - 0.04) / 2],
                               rgba=[0.4, 0.32, 0.25, 1], contype=0, conaffinity=0)
        # Built at the largest width so the collision bounds stay valid when reset shrinks it.
        body = world.add_body(name="box", pos=[0.31, 0, TABLE_TOP + 0.08])
        body.add_freejoint(name="box")
        body.add_geom(name="box", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.07, self.cfg.box_half_width[1], 0.08],
                      mass=self.cfg.box_mass, rgba=[0.85, 0.55, 0.2, 1], friction=[1.0, 0.02, 0.001], condim=4)
        goal = world.add_body(name="goal", pos=[0.31, 0, TABLE_TOP + 0.18], mocap=True)
        goal.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.01, 0, 0], rgba=[0.2, 0.8, 0.2, 0.5],
                      contype=0, conaffinity=0, group=2)
        world.add_camera(name="front", pos=[1.6, -0.9, 1.5], xyaxes=[0.5, 0.866, 0, -0.35, 0.2, 0.915], fovy=50)
        return spec

    # ----------------------------------------------------------------- episode
    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        m, d, c = self.model, self.data, self.cfg
        d.qpos[self.all.qpos] = self._stand
        d.ctrl[self.all.act] = self._stand
        half = np.array([0.07, rng.uniform(*c.box_half_width), 0.08])
        m.geom_size[self._box_geom] = half
        x, y, yaw = rng.uniform(*c.box_x), rng.uniform(*c.box_y), rng.uniform(*c.box_yaw)
        self._rest_z = TABLE_TOP + half[2]
        d.qpos[self._box_qpos:self._box_qpos + 7] = [x, y, self._rest_z, *yaw_quat(yaw)]
        self._goal = np.array([x, y, self._rest_z + c.lift_height])
        d.mocap_pos[m.body("goal").mocapid[0]] = self._goal
        self._half = half
        return {"object_init_pos": np.array([x, y, self._rest_z]), "object_init_yaw": yaw,
                "object_size": half.copy()}

    def _apply_action(self, action: np.ndarray) -> None:
        """Arm joint targets ``(14,)`` rad, within ``target_lead_limit`` of the measured joints when it is set."""
        lead = self.cfg.target_lead_limit
        if lead > 0.0:
            q = self.data.qpos[self.arm.qpos]
            action = np.clip(action, q - lead, q + lead)
        self.data.ctrl[self.arm.act] = action

    def _hold_action(self) -> np.ndarray:
        """Keep the current arm targets while a delayed action is in flight."""
        return self.data.ctrl[self.arm.act].copy()

    # ----------------------------------------------------------------- observation / reward
    def _observation(self) -> dict[str, np.ndarray]:
        d = self.data
        return {
            "joint_pos": d.qpos[self.arm.qpos].astype(np.float32),
            "joint_vel": d.qvel[self.arm.dof].astype(np.float32),
            "left_palm_pos": d.site_xpos[self._palms[0]].astype(np.float32),
            "right_palm_pos": d.site_xpos[self._palms[1]].astype(np.float32),
            "object_pos": d.xpos[self._box].astype(np.float32),
            "object_quat": d.xquat[self._box].astype(np.float32),
            "object_size": self._half.astype(np.float32),
            "goal_pos": self._goal.astype(np.float32),
        }

    def palm_contacts(self) -> tuple[bool, bool]:
        """Whether the left and right palm pads touch the box."""
        touch = [False, False]
        for c in self.data.contact[: self.data.ncon]:
            pair = (c.geom1, c.geom2)
            if self._box_geom in pair:
                for k, g in enumerate(self._palm_geoms):
                    touch[k] |= g in pair
        return touch[0], touch[1]

    def _reward_terms(self) -> dict[str, float]:
        d = self.data
        centre, rot = d.xpos[self._box], d.xmat[self._box].reshape(3, 3)
        sides = [centre + rot[:, 1] * self._half[1], centre - rot[:, 1] * self._half[1]]
        reach = sum(float(np.linalg.norm(d.site_xpos[p] - s)) for p, s in zip(self._palms, sides, strict=True))
        return {"reach": -reach, "grasp": float(all(self.palm_contacts())),
                "lift": min(max(float(centre[2]) - self._rest_z, 0.0), self.cfg.lift_height)}

    def _is_success(self) -> bool:
        lifted = self.data.xpos[self._box][2] >= self._rest_z + self.cfg.lift_height - 1e-3
        return bool(lifted and all(self.palm_contacts()))

    def _is_failure(self) -> bool:
        return bool(self.data.xpos[self._box][2] < TABLE_TOP)

    def features(self) -> dict[str, dict[str, Feature]]:
        units = {"joint_pos": "rad", "joint_vel": "rad/s", "object_quat": "quat wxyz"}
        obs = {k: Feature(tuple(s.shape), "float32", units.get(k, "m")) for k, s in self.observation_space.items()}
        return {"observation": obs, "action": {"action": Feature((14,), "float32", "rad", ARM_JOINTS)}}
