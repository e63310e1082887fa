"""A classical standing controller for the floating-base G1: PD posture plus ankle and hip strategies.

The joint servos (MuJoCo position actuators, PD at 500 Hz) hold the standing posture; on top of it this
controller shifts the leg joint targets from the capture point ``xi = c + v / omega`` of the centre of mass
(``c``, ``v`` relative to the midpoint of the soles, heading frame; ``omega = sqrt(g / z_com)``):

* ankle strategy: ankle pitch / roll targets move by ``k_ankle * xi`` (rad/m), which moves the centre of
  pressure under the capture point while it stays inside the feet;
* hip strategy: beyond ``hip_deadband`` the hip pitch / roll targets also move (``k_hip``), bending at
  the hips to throw the upper body against the fall;
* trunk: the pelvis tilt measured by the IMU (projected gravity) is fed back to the hips (``k_tilt``).

This is the base policy of ``robolearn/G1PushRecovery-v0``; residual RL later learns a correction to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robolearn.sim.humanoid import g1_model

G = 9.81
_J = {name: i for i, name in enumerate(g1_model.ALL_JOINTS)}
_ANKLE_PITCH = [_J["left_ankle_pitch_joint"], _J["right_ankle_pitch_joint"]]
_ANKLE_ROLL = [_J["left_ankle_roll_joint"], _J["right_ankle_roll_joint"]]
_HIP_PITCH = [_J["left_hip_pitch_joint"], _J["right_hip_pitch_joint"]]
_HIP_ROLL = [_J["left_hip_roll_joint"], _J["right_hip_roll_joint"]]
_LOW = np.array([g1_model.joint_range(j)[0] for j in g1_model.ALL_JOINTS])
_HIGH = np.array([g1_model.joint_range(j)[1] for j in g1_model.ALL_JOINTS])


class StandingController:
    """A :class:`~robolearn.core.protocols.Policy` for G1PushRecovery: ``act`` returns ``(B, 1, 29)`` rad.

    ``noise`` (>= 0) adds Gaussian noise of ``0.02 * noise`` rad to the joint targets (for diverse data).
    """

    noise_shape = None

    def __init__(self, noise: float = 0.0, seed: int | None = 0, k_ankle: float = 1.5, k_hip: float = 2.0,
                 hip_deadband: float = 0.04, k_tilt: float = 0.5, com_ref: tuple[float, float] = (0.0, 0.0)):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self.k_ankle, self.k_hip, self.hip_deadband, self.k_tilt = k_ankle, k_hip, hip_deadband, k_tilt
        self.com_ref = np.asarray(com_ref, np.float64)
        self.stand = g1_model.stand_qpos()

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        """Stateless: nothing to forget."""

    def act(self, obs, noise: np.ndarray | None = None) -> np.ndarray:
        """Joint targets ``(B, 1, 29)`` float32 rad from batched G1PushRecovery observations."""
        com = np.asarray(obs["com_pos"], np.float64)
        vel = np.asarray(obs["com_vel"], np.float64)
        grav = np.asarray(obs["projected_gravity"], np.float64)
        batch = len(com)
        omega = np.sqrt(G / np.maximum(com[:, 2], 0.3))
        xi = com[:, :2] + vel[:, :2] / omega[:, None] - self.com_ref  # capture point (B, 2) m
        beyond = np.sign(xi) * np.maximum(np.abs(xi) - self.hip_deadband, 0.0)
        # Pelvis pitch / roll from the IMU: gravity in the pelvis frame is (sin p, -sin r cos p, ...) * -1.
        pitch, roll = -np.arcsin(np.clip(grav[:, 0], -1, 1)), np.arcsin(np.clip(grav[:, 1], -1, 1))
        q = np.tile(self.stand, (batch, 1))
        q[:, _ANKLE_PITCH] += (self.k_ankle * xi[:, 0])[:, None]
        q[:, _ANKLE_ROLL] += (-self.k_ankle * xi[:, 1])[:, None]
        q[:, _HIP_PITCH] += (-self.k_hip * beyond[:, 0] - self.k_tilt * pitch)[:, None]
        q[:, _HIP_ROLL] += (self.k_hip * beyond[:, 1] - self.k_tilt * roll)[:, None]
        if self.noise > 0:
            q += self.rng.normal(0.0, 0.02 * self.noise, q.shape)
        return np.clip(q, _LOW, _HIGH).astype(np.float32)[:, None, :]
