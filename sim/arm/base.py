"""Shared parts of the Franka Panda tasks: scene, action mapping, proprioception.

Action (``action_mode="ee_delta"``, default), float32 ``(5,)`` in physical units per control step:
``[dx, dy, dz]`` TCP displacement (m, world frame, at most ``max_ee_step``), ``dyaw`` (rad, at most
``max_yaw_step``) and ``gripper`` (0 open .. 1 closed). With ``action_mode="joint_delta"`` the action is
``(8,)``: seven joint target deltas (rad, at most ``max_joint_step``) and the gripper.

Observation, a dict of float32 arrays: ``joint_pos (7,)`` rad, ``joint_vel (7,)`` rad/s, ``ee_pos (3,)``
m, ``ee_quat (4,)`` (w, x, y, z), ``gripper (1,)`` opening in [0 open, 1 closed], then the task's
privileged object state (``object_pos``, ``object_quat``, ``goal_pos``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.core.config import from_dict
from robolearn.core.protocols import Feature
from robolearn.sim.arm.controller import DiffIKController, index_or_slice
from robolearn.sim.mujoco_env import MujocoTaskEnv, box
from robolearn.sim.pixels import set_render_defaults
from robolearn.sim.robots import panda


@dataclass
class ArmTaskConfig:
    """Settings shared by the Panda tasks (passed as ``gymnasium.make(id, config=...)`` or kwargs)."""

    action_mode: Literal["ee_delta", "joint_delta"] = "ee_delta"
    """``ee_delta``: TCP displacement + yaw + gripper (differential IK); ``joint_delta``: joint targets."""
    control_hz: float = 20.0
    """Policy rate (Hz)."""
    physics_hz: float = 500.0
    """Physics rate (Hz); a multiple of control_hz."""
    max_ee_step: float = 0.02
    """Largest TCP displacement per control step (m); 0.4 m/s at 20 Hz."""
    max_yaw_step: float = 0.15
    """Largest yaw change per control step (rad)."""
    max_joint_step: float = 0.1
    """Largest joint target change per control step in joint_delta mode (rad)."""
    reward_scales: dict[str, float] = field(default_factory=lambda: {"success": 1.0})
    """Scale of each named reward term (sparse success by default; the others are still in info)."""
    terminate_on_success: bool = True
    """End the episode (terminated=True) on success."""
    model_source: str = "auto"
    """Where the Panda model comes from: auto, gym_hil or menagerie."""


def build_scene(source: str) -> mujoco.MjSpec:
    """The Panda on a table top (the plane z=0), with lights and the ``front`` and ``wrist`` cameras."""
    spec, _ = panda.load_panda_spec(source)
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    set_render_defaults(spec)
    checker = spec.add_texture(
        name="table_tex", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        width=256, height=256, rgb1=[0.55, 0.5, 0.45], rgb2=[0.5, 0.45, 0.4],
    )
    spec.add_material(name="table_mat", textures=["", checker.name], texrepeat=[6, 6], reflectance=0.0)
    world = spec.worldbody
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1.2, 1.2, 0.02], material="table_mat")
    world.add_light(pos=[0.4, 0.0, 2.0], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8], castshadow=False)
    spec.visual.quality.offsamples = 2
    world.add_camera(name="front", pos=[1.15, 0.0, 0.75], xyaxes=[0, 1, 0, -0.678, 0, 0.735], fovy=55)
    # On the gripper base (its z axis is the approach axis), looking past the fingers.
    tcp = spec.site(panda.TCP_SITE)
    tcp.parent.add_camera(name="wrist", pos=[0.0, 0.07, 0.06], xyaxes=[1, 0, 0, 0, -0.935, -0.354], fovy=75)
    return spec


class PandaTaskEnv(MujocoTaskEnv):
    """A Panda task: subclasses add their objects in :meth:`_add_objects` and the task logic."""

    GRIPPER_CLOSED_RAD = 0.8

    push_body = "link7"

    def __init__(self, config: ArmTaskConfig | dict[str, Any] | None = None, render_mode: str | None = None,
                 camera: str = "front", width: int = 256, height: int = 256,
                 randomization: Any = None, pixels: Any = None, visual: Any = None,
                 **overrides: Any):
        cfg = config if isinstance(config, ArmTaskConfig) else from_dict(ArmTaskConfig, dict(config or {}))
        if overrides:
            from robolearn.core.config import to_dict

            cfg = from_dict(ArmTaskConfig, {**to_dict(cfg), **overrides}, f"{type(self).__name__} kwargs")
        self.cfg = cfg
        self.control_hz, self.physics_hz = cfg.control_hz, cfg.physics_hz
        self.terminate_on_success = cfg.terminate_on_success
        self.reward_scales = dict(cfg.reward_scales)
        super().__init__(render_mode=render_mode, camera=camera, width=width, height=height,
                         randomization=randomization, pixels=pixels, visual=visual)
        m = self.model
        self._arm_qpos = np.array([m.joint(j).qposadr[0] for j in panda.ARM_JOINTS])
        self._arm_dof = np.array([m.joint(j).dofadr[0] for j in panda.ARM_JOINTS])
        joint_ids = [m.joint(j).id for j in panda.ARM_JOINTS]
        self._arm_act = np.array([int(np.flatnonzero(m.actuator_trnid[:, 0] == j)[0]) for j in joint_ids])
        self._grip_act = m.actuator(panda.GRIPPER_ACTUATOR).id
        self._grip_qpos = m.joint(panda.GRIPPER_JOINT).qposadr[0]
        self._grip_ctrl_max = float(m.actuator_ctrlrange[self._grip_act, 1])
        self._tcp = m.site(panda.TCP_SITE).id
        self.ik = DiffIKController(m, self.data, panda.TCP_SITE, self._arm_dof, self._arm_qpos, panda.HOME_QPOS)
        # Per-step reads and writes go through slices (views) where the indices are consecutive.
        self._qpos_idx, self._dof_idx = index_or_slice(self._arm_qpos), index_or_slice(self._arm_dof)
        self._act_idx = index_or_slice(self._arm_act)
        self._ee_delta = cfg.action_mode == "ee_delta"
        self._quat = np.zeros(4)
        if cfg.action_mode == "ee_delta":
            s, y = cfg.max_ee_step, cfg.max_yaw_step
            self.action_space = gym.spaces.Box(
                low=np.array([-s, -s, -s, -y, 0.0], np.float32), high=np.array([s, s, s, y, 1.0], np.float32),
                dtype=np.float32,
            )
        else:
            j = cfg.max_joint_step
            self.action_space = gym.spaces.Box(
                low=np.array([-j] * 7 + [0.0], np.float32), high=np.array([j] * 7 + [1.0], np.float32),
                dtype=np.float32,
            )
        obs = self._observation_shapes()
        self.observation_space = gym.spaces.Dict({k: box(shape) for k, shape in obs.items()})

    # ----------------------------------------------------------------- scene
    def _build_spec(self) -> mujoco.MjSpec:
        spec = build_scene(self.cfg.model_source)
        self._add_objects(spec)
        return spec

    def _add_objects(self, spec: mujoco.MjSpec) -> None:
        raise NotImplementedError

    def _task_observation_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"joint_pos": (7,), "joint_vel": (7,), "ee_pos": (3,), "ee_quat": (4,), "gripper": (1,),
                **self._task_observation_shapes()}

    def proprioception_keys(self) -> tuple[str, ...]:
        """Joint positions (rad) and velocities (rad/s), the TCP pose by forward kinematics of the joint positions
        (m, quat wxyz: what a Franka reports as ``O_T_EE``) and the gripper closure; the task's object and goal
        keys are privileged."""
        return ("joint_pos", "joint_vel", "ee_pos", "ee_quat", "gripper")

    # ----------------------------------------------------------------- robot state
    def reset_robot(self, qpos: np.ndarray, gripper: float = 0.0) -> None:
        """Put the arm at ``qpos`` (7,) rad at rest, servo targets on it, gripper command ``gripper``."""
        self.data.qpos[self._arm_qpos] = qpos
        self.data.ctrl[self._arm_act] = qpos
        self.data.ctrl[self._grip_act] = gripper * self._grip_ctrl_max

    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._tcp].copy()

    def tcp_rot(self) -> np.ndarray:
        return self.data.site_xmat[self._tcp].reshape(3, 3).copy()

    def gripper_closure(self) -> float:
        """Finger closure in [0 open, 1 closed], from the driver joint angle."""
        return min(max(float(self.data.qpos[self._grip_qpos]) / self.GRIPPER_CLOSED_RAD, 0.0), 1.0)

    def _apply_action(self, action: np.ndarray) -> None:
        ctrl = self.data.ctrl
        if self._ee_delta:
            targets = self.ik.joint_targets_for_delta(action[:3], float(action[3]))
        else:
            targets = ctrl[self._act_idx] + action[:7]
        ctrl[self._act_idx] = targets
        ctrl[self._grip_act] = float(action[-1]) * self._grip_ctrl_max

    def _hold_action(self) -> np.ndarray:
        """No motion, gripper kept at its current command."""
        hold = np.zeros(self.action_space.shape)
        hold[-1] = self.data.ctrl[self._grip_act] / self._grip_ctrl_max
        return hold

    def _proprio(self) -> dict[str, np.ndarray]:
        d, quat = self.data, self._quat
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        return {
            "joint_pos": d.qpos[self._qpos_idx].astype(np.float32),
            "joint_vel": d.qvel[self._dof_idx].astype(np.float32),
            "ee_pos": d.site_xpos[self._tcp].astype(np.float32),
            "ee_quat": quat.astype(np.float32),
            "gripper": np.array([self.gripper_closure()], np.float32),
        }

    def features(self) -> dict[str, dict[str, Feature]]:
        units = {"joint_pos": "rad", "joint_vel": "rad/s", "ee_quat": "quat wxyz", "gripper": "closure 0..1",
                 "object_quat": "quat wxyz", "goal_quat": "quat wxyz"}
        obs = {k: Feature(tuple(s.shape), str(s.dtype), "RGB" if k.startswith("pixels/") else units.get(k, "m"))
               for k, s in self.observation_space.items()}
        if self.cfg.action_mode == "ee_delta":
            action = Feature((5,), "float32", "m, m, m, rad, closure 0..1", ("dx", "dy", "dz", "dyaw", "gripper"))
        else:
            action = Feature((8,), "float32", "rad x7, closure 0..1", (*panda.ARM_JOINTS, "gripper"))
        return {"observation": obs, "action": {"action": action}}


def body_pose(data: mujoco.MjData, body_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and quaternion wxyz (4,) of a body, float32."""
    return data.xpos[body_id].astype(np.float32), data.xquat[body_id].astype(np.float32)


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion wxyz of a rotation by ``yaw`` (rad) about world z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
