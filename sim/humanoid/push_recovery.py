"""``robolearn/G1PushRecovery-v0``: the floating-base G1 must stay upright under random pushes.

Pushes: a horizontal force of ``push_force`` N in a random direction on the torso for ``push_duration`` s,
repeated with gaps drawn from ``push_interval`` s (the first after one such gap). The env reads its
attributes ``push_force``, ``push_duration`` and ``push_interval`` at every reset, so a domain-randomization
wrapper can change them between episodes; ``info`` at reset reports ``task_push_force`` and the episode's
``push_schedule`` (``(n_max, 5)``, NaN rows after the first ``push_count``). The generic randomization
pushes (``randomization.push_force``) act on the pelvis.

Action, float32 ``(29,)``: absolute joint-position targets (rad) of all joints in Unitree's order (legs,
waist, arms; :data:`~robolearn.sim.humanoid.g1_model.ALL_JOINTS`), bounded by the joint ranges and tracked
by MuJoCo position actuators at the physics rate (500 Hz); the policy runs at ``control_hz`` (50 Hz).

Observation, a dict of float32 arrays: ``joint_pos (29,)`` rad, ``joint_vel (29,)`` rad/s, ``base_quat (4,)``
pelvis orientation wxyz, ``base_ang_vel (3,)`` rad/s and ``base_lin_vel (3,)`` m/s in the pelvis frame
(IMU), ``projected_gravity (3,)`` unit gravity in the pelvis frame, ``base_height (1,)`` m, ``com_pos (3,)``
m and ``com_vel (3,)`` m/s of the centre of mass relative to the midpoint of the soles, in the heading
frame (world axes rotated by the pelvis yaw).

Termination (failure): the pelvis drops below ``fall_height`` or tilts more than ``fall_tilt``. Success:
still standing after ``survive_seconds``. Reward terms (``reward/<term>``): ``alive`` = 1 per step,
``upright`` = cos(tilt), ``com`` = -horizontal CoM offset (m), ``posture`` = -sum of squared joint
deviations from the standing posture (rad^2); by default only ``alive`` is scaled (1.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.core.protocols import Feature
from robolearn.sim.humanoid import g1_model
from robolearn.sim.humanoid.common import JointIndex, make_config, quat_to_mat, yaw_of_quat
from robolearn.sim.mujoco_env import MujocoTaskEnv, box


@dataclass
class G1PushRecoveryConfig:
    """Settings of G1PushRecovery (``gymnasium.make(id, **kwargs)`` or ``config=``)."""

    control_hz: float = 50.0
    """Policy rate (Hz)."""
    physics_hz: float = 500.0
    """Physics rate (Hz); a multiple of control_hz."""
    push_force: float = 60.0
    """Magnitude of each push (N), horizontal, random direction; 0 disables pushes."""
    push_duration: float = 0.1
    """Duration of each push (s)."""
    push_interval: tuple[float, float] = (1.0, 2.0)
    """Range of the gap before each push (s)."""
    init_joint_noise: float = 0.02
    """Uniform noise on the initial joint positions (rad)."""
    survive_seconds: float = 5.0
    """Standing this long counts as success (s); the registry's time limit is 5 s."""
    fall_height: float = 0.45
    """Pelvis height below which the robot has fallen (m)."""
    fall_tilt: float = 0.8
    """Pelvis tilt from upright beyond which the robot has fallen (rad)."""
    reward_scales: dict[str, float] = field(default_factory=lambda: {"alive": 1.0})
    """Scale of each named reward term."""


class G1PushRecoveryEnv(MujocoTaskEnv):
    """The floating-base G1 standing under random pushes; see the module docstring."""

    terminate_on_success = False
    push_body = "pelvis"
    """Body that the generic randomization pushes act on (the task's own pushes act on the torso)."""

    def __init__(self, config: G1PushRecoveryConfig | dict[str, Any] | None = None, render_mode: str | None = None,
                 camera: str = "front", width: int = 256, height: int = 256, randomization: Any = None,
                 pixels: Any = None, visual: Any = None,
                 **overrides: Any):
        self.cfg = make_config(G1PushRecoveryConfig, config, overrides, "G1PushRecovery")
        c = self.cfg
        if c.push_force < 0 or c.push_duration < 0 or not 0 < c.push_interval[0] <= c.push_interval[1]:
            raise ValueError(f"bad push settings: force {c.push_force} N, duration {c.push_duration} s, "
                             f"interval {c.push_interval} s (need force, duration >= 0 and 0 < lo <= hi)")
        self.control_hz, self.physics_hz = c.control_hz, c.physics_hz
        self.reward_scales = dict(c.reward_scales)
        self.push_force, self.push_duration, self.push_interval = c.push_force, c.push_duration, c.push_interval
        super().__init__(render_mode=render_mode, camera=camera, width=width, height=height,
                         randomization=randomization, pixels=pixels, visual=visual)
        m = self.model
        self.joints = JointIndex.of(m, g1_model.ALL_JOINTS)
        self._stand = g1_model.stand_qpos()
        self._pelvis, self._torso = m.body("pelvis").id, m.body("torso_link").id
        self._soles = (m.site("left_sole").id, m.site("right_sole").id)
        self.action_space = gym.spaces.Box(self.joints.low.astype(np.float32), self.joints.high.astype(np.float32),
                                           dtype=np.float32)
        shapes = {"joint_pos": (29,), "joint_vel": (29,), "base_quat": (4,), "base_ang_vel": (3,),
                  "base_lin_vel": (3,), "projected_gravity": (3,), "base_height": (1,), "com_pos": (3,),
                  "com_vel": (3,)}
        self.observation_space = gym.spaces.Dict({k: box(s) for k, s in shapes.items()})
        self._pushes = np.zeros((0, 5))

    def _build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        g1_model.add_ground(spec)
        g1_model.build_g1(spec, floating=True)
        spec.worldbody.add_camera(name="front", pos=[2.2, -1.4, 1.3], xyaxes=[0.54, 0.84, 0, -0.2, 0.13, 0.97],
                                  fovy=50, mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
        return spec

    # ----------------------------------------------------------------- episode
    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        m, d, c = self.model, self.data, self.cfg
        q = self._stand + rng.uniform(-c.init_joint_noise, c.init_joint_noise, self._stand.shape)
        q = np.clip(q, self.joints.low, self.joints.high)
        d.qpos[self.joints.qpos] = q
        d.ctrl[self.joints.act] = q
        d.qpos[3:7] = [1, 0, 0, 0]
        mujoco.mj_kinematics(m, d)
        d.qpos[2] -= min(d.site_xpos[s][2] for s in self._soles)  # lowest sole on the floor
        self._pushes = self._sample_pushes(rng)
        # A fixed shape (from the configured interval), so that batched envs can stack the reset infos: NaN
        # rows after the last push. Only a randomized interval shorter than the configured one adds rows.
        rows = int((self.cfg.survive_seconds + 1.0) // self.cfg.push_interval[0]) + 1
        schedule = np.full((max(rows, len(self._pushes)), 5), np.nan)
        schedule[: len(self._pushes)] = self._pushes
        return {"task_push_force": float(self.push_force), "task_push_duration": float(self.push_duration),
                "push_schedule": schedule, "push_count": len(self._pushes)}

    def _sample_pushes(self, rng: np.random.Generator) -> np.ndarray:
        """Pushes ``(n, 5)``: start (s), end (s), force x, y, z (N, world), over ``survive_seconds`` + 1 s."""
        rows, t = [], 0.0
        lo, hi = self.push_interval
        while True:
            t += rng.uniform(lo, hi)
            if t > self.cfg.survive_seconds + 1.0:
                break
            angle = rng.uniform(0, 2 * np.pi)
            rows.append([t, t + self.push_duration, self.push_force * np.cos(angle),
                         self.push_force * np.sin(angle), 0.0])
            t += self.push_duration
        return np.array(rows, dtype=np.float64).reshape(-1, 5)

    def _apply_action(self, action: np.ndarray) -> None:
        d = self.data
        d.ctrl[self.joints.act] = action
        force = np.zeros(3)
        for start, end, fx, fy, fz in self._pushes:
            if start <= d.time < end:
                force = np.array([fx, fy, fz])
        d.xfrc_applied[self._torso, :3] = force

    def _hold_action(self) -> np.ndarray:
        """Keep the current joint targets while a delayed action is in flight."""
        return self.data.ctrl[self.joints.act].copy()

    # ----------------------------------------------------------------- observation / reward
    def support_centre(self) -> np.ndarray:
        """Midpoint of the two sole sites (3,) m, world frame."""
        return 0.5 * (self.data.site_xpos[self._soles[0]] + self.data.site_xpos[self._soles[1]])

    def _observation(self) -> dict[str, np.ndarray]:
        m, d = self.model, self.data
        mujoco.mj_subtreeVel(m, d)
        rot = quat_to_mat(d.qpos[3:7])
        yaw = yaw_of_quat(d.qpos[3:7])
        cy, sy = np.cos(yaw), np.sin(yaw)
        to_heading = np.array([[cy, sy, 0], [-sy, cy, 0], [0, 0, 1]])
        com = d.subtree_com[self._pelvis] - self.support_centre()
        return {
            "joint_pos": d.qpos[self.joints.qpos].astype(np.float32),
            "joint_vel": d.qvel[self.joints.dof].astype(np.float32),
            "base_quat": d.qpos[3:7].astype(np.float32),
            "base_ang_vel": d.qvel[3:6].astype(np.float32),  # the free joint's angular velocity is local
            "base_lin_vel": (rot.T @ d.qvel[0:3]).astype(np.float32),
            "projected_gravity": (rot.T @ np.array([0.0, 0.0, -1.0])).astype(np.float32),
            "base_height": np.array([d.qpos[2]], np.float32),
            "com_pos": (to_heading @ com).astype(np.float32),
            "com_vel": (to_heading @ d.subtree_linvel[self._pelvis]).astype(np.float32),
        }

    def tilt(self) -> float:
        """Angle (rad) between the pelvis z axis and the world vertical."""
        return float(np.arccos(np.clip(self.data.xmat[self._pelvis][8], -1.0, 1.0)))

    def _reward_terms(self) -> dict[str, float]:
        d = self.data
        com = d.subtree_com[self._pelvis] - self.support_centre()
        return {"alive": 1.0, "upright": float(np.cos(self.tilt())), "com": -float(np.linalg.norm(com[:2])),
                "posture": -float(np.sum((d.qpos[self.joints.qpos] - self._stand) ** 2))}

    def _is_failure(self) -> bool:
        return bool(self.data.qpos[2] < self.cfg.fall_height or self.tilt() > self.cfg.fall_tilt)

    def _is_success(self) -> bool:
        return bool(self.data.time >= self.cfg.survive_seconds - 0.5 / self.control_hz and not self._is_failure())

    def features(self) -> dict[str, dict[str, Feature]]:
        units = {"joint_pos": "rad", "joint_vel": "rad/s", "base_quat": "quat wxyz", "base_ang_vel": "rad/s",
                 "base_lin_vel": "m/s", "projected_gravity": "unit", "com_vel": "m/s"}
        obs = {k: Feature(tuple(s.shape), "float32", units.get(k, "m")) for k, s in self.observation_space.items()}
        return {"observation": obs,
                "action": {"action": Feature((29,), "float32", "rad", g1_model.ALL_JOINTS)}}
