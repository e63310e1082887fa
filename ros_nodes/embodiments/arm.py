"""The Franka Panda arm: joint position targets + gripper closure, via the task's own differential IK.

Command topic ``joint_trajectory`` (``trajectory_msgs/JointTrajectory``, the ros2_control
joint_trajectory_controller's): the adapter sends ``joint_names`` = 7 arm joints + ``gripper``, one point whose
positions are the targets (rad; gripper closure 0..1) and ``time_from_start`` the control period. The twin
takes what ``joint_trajectory_controller`` takes (:meth:`Arm.twin_plan`): any order and subset of those names
(the others hold), several points interpolated linearly over ``time_from_start``. The twin also takes
``forward_position`` (``std_msgs/Float64MultiArray``, the same 8 positions, for a ``position_controllers``
forward controller). Safety: joint range, Franka's datasheet velocity and acceleration, per-step change, a
TCP workspace box, the gripper in 0..1; the fallback holds the measured joints and the last commanded
gripper closure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, sec_to_stamp, stamp_to_sec
from robolearn.ros_nodes.embodiments.base import (
    CommandBounds,
    JointEmbodiment,
    PlanPoints,
    TwinInput,
    bounds_from_safety,
    joint_ranges,
    name_index,
)
from robolearn.ros_nodes.safety import Command, JointTargetChecks, RobotState, SafetyConfig, violates

GRIPPER = "gripper"

PANDA_MAX_VELOCITY = [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]
"""Franka Panda joint velocity limits (rad/s), from Franka's datasheet."""
PANDA_MAX_ACCELERATION = [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]
"""Franka Panda joint acceleration limits (rad/s^2), from Franka's datasheet."""
ARM_WORKSPACE = ([0.15, -0.6, -0.005], [0.95, 0.6, 0.9])
"""Default TCP box (m, world frame): in front of the base, above the table top (z = 0)."""


class ArmAdapter:
    """Panda arm: env actions -> joint position targets via the task's own differential IK.

    ``ee_delta`` actions go through the same :class:`~robolearn.sim.arm.controller.DiffIKController` the
    sim uses, on a kinematic copy of the task model set to the measured joint positions, so a command
    equals what the sim computes internally. ``joint_delta`` actions add to the previous targets.

    Args:
        env_id: the registered arm task whose model and action mode define the robot.
        period: control period (s) written as ``time_from_start``.
    """

    embodiment = "arm"
    msg_type_name = "trajectory_msgs/JointTrajectory"

    def __init__(self, env_id: str, period: float | None = None, env_kwargs: dict[str, Any] | None = None):
        import mujoco

        from robolearn.sim.arm.controller import DiffIKController
        from robolearn.sim.registry import gym_make
        from robolearn.sim.robots import panda

        env = gym_make(env_id, **(env_kwargs or {})).unwrapped
        self._mj = mujoco
        self.model = env.model
        self.data = mujoco.MjData(self.model)
        self.mode = env.cfg.action_mode
        self.action_size = int(env.action_space.shape[0])
        self.period = float(period if period is not None else 1.0 / env.control_hz)
        self.joint_names: list[str] = list(panda.ARM_JOINTS)
        self.names = [*self.joint_names, GRIPPER]
        self._qpos = env._arm_qpos.copy()
        self.ik = DiffIKController(self.model, self.data, panda.TCP_SITE, env._arm_dof.copy(), self._qpos,
                                   panda.HOME_QPOS)
        self._tcp = self.model.site(panda.TCP_SITE).id
        self._targets: np.ndarray | None = None
        env.close()

    def _set_q(self, q: np.ndarray) -> None:
        self.data.qpos[self._qpos] = q
        self._mj.mj_kinematics(self.model, self.data)
        self._mj.mj_comPos(self.model, self.data)

    def fk(self, q: np.ndarray) -> np.ndarray:
        """TCP position ``(3,)`` m for joint positions ``q`` ``(7,)`` rad."""
        self._set_q(np.asarray(q, np.float64)[:7])
        return self.data.site_xpos[self._tcp].copy()

    def reset(self) -> None:
        """Forget the previous targets (a new episode, or after a fallback)."""
        self._targets = None

    def command(self, action: np.ndarray, joint_pos: np.ndarray | None, stamp: float) -> Command:
        """Joint targets for ``action`` ``(Da,)`` at measured ``joint_pos`` ``(7,)`` rad."""
        action = np.asarray(action, np.float64).reshape(-1)
        if action.size != self.action_size:
            raise MessageError(f"arm action of size {action.size}, expected {self.action_size}")
        q = np.asarray(joint_pos, np.float64)
        if self.mode == "ee_delta":
            self._set_q(q)
            targets = self.ik.joint_targets_for_delta(action[:3], float(action[3]))
        else:
            base = q if self._targets is None else self._targets
            targets = base + action[:7]
        self._targets = targets
        return Command(stamp, np.append(targets, action[-1]))

    def to_msg(self, cmd: Command) -> Any:
        """``trajectory_msgs/JointTrajectory`` with one point."""
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        msg = JointTrajectory()
        msg.header.stamp = sec_to_stamp(cmd.stamp)
        msg.joint_names = list(self.names)
        point = JointTrajectoryPoint()
        point.positions = np.asarray(cmd.values, np.float64).tolist()
        point.time_from_start.sec = int(self.period)
        point.time_from_start.nanosec = int(round((self.period % 1.0) * 1e9))
        msg.points = [point]
        return msg

    def forward_msg(self, cmd: Command) -> Any:
        """``std_msgs/Float64MultiArray`` for a forward position controller."""
        from std_msgs.msg import Float64MultiArray

        return Float64MultiArray(data=np.asarray(cmd.values, np.float64).tolist())

    def from_msg(self, msg: Any) -> Command:
        """A ``JointTrajectory`` -> Command; raises :class:`MessageError` on names or point count."""
        if len(msg.points) != 1:
            raise MessageError(f"expected one trajectory point, got {len(msg.points)}")
        if list(msg.joint_names) != self.names:
            raise MessageError(f"joint names {list(msg.joint_names)}, expected {self.names}")
        return Command(stamp_to_sec(msg.header.stamp), np.asarray(msg.points[0].positions, np.float64))

    def trajectory(self, msg: Any, hold: np.ndarray) -> PlanPoints:
        """A ``JointTrajectory`` as ros2_control's ``joint_trajectory_controller`` reads it -> full commands.

        Any order and any subset of :attr:`names` (the 7 joints, rad, and ``gripper``, closure 0..1); a joint
        not named keeps its value in ``hold`` ``(8,)``. Each point's ``time_from_start`` (s) is when it is
        reached, strictly increasing. Raises :class:`MessageError` (reason ``unknown joint``, ``duplicate
        joint``, ``no points``, ``point/name length mismatch``, ``time_from_start not increasing``).
        """
        names = list(msg.joint_names)
        index = name_index(names, self.names)
        if not msg.points:
            raise MessageError("a trajectory without points", "no points")
        stamp, points, t_prev = stamp_to_sec(msg.header.stamp), [], -1.0
        for k, point in enumerate(msg.points):
            if len(point.positions) != len(names):
                raise MessageError(f"point {k} has {len(point.positions)} positions for {len(names)} names",
                                   "point/name length mismatch")
            t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            if t <= t_prev:
                raise MessageError(f"point {k} at {t:g} s after {t_prev:g} s", "time_from_start not increasing")
            values = np.array(hold if not points else points[-1][1].values, np.float64)
            values[index] = np.asarray(point.positions, np.float64)
            points.append((t, Command(stamp, values)))
            t_prev = t
        return points

    @staticmethod
    def msg_type() -> type:
        from trajectory_msgs.msg import JointTrajectory

        return JointTrajectory


class ArmChecks(JointTargetChecks):
    """Joint-target limits on the 7 arm joints, the gripper closure in 0..1, and a fallback that holds the
    joints with the last commanded closure (else the measured one, else open).

    Args:
        cfg: the limits (``size`` = joints + 1).
        fk: forward kinematics for the workspace box (required when the box is set).
    """

    def __init__(self, cfg: SafetyConfig, fk: Callable[[np.ndarray], np.ndarray] | None = None):
        if cfg.workspace_low and fk is None:
            raise ValueError("an end-effector workspace box needs forward kinematics (fk)")
        super().__init__(cfg, cfg.size - 1, fk)
        self._last_gripper: float | None = None

    def limit_rest(self, out: np.ndarray, clipped: list[str]) -> str | None:
        if not 0.0 <= out[-1] <= 1.0:
            if violates(self.cfg, "gripper", clipped):
                return "gripper outside 0..1"
            out[-1] = min(max(out[-1], 0.0), 1.0)
        self._last_gripper = float(out[-1])
        return None

    def observed(self, values: np.ndarray) -> None:
        if np.isfinite(values[-1]):
            self._last_gripper = float(min(max(values[-1], 0.0), 1.0))

    def fallback(self, state: RobotState, now: float, since: float | None) -> Command | None:
        hold = self.hold(state)
        if hold is None:
            return None
        grip = self._last_gripper if self._last_gripper is not None else state.gripper or 0.0
        return Command(now, np.append(hold, grip))


def forward_command(msg: Any, now: float) -> Command:
    """A forward-position command (``Float64MultiArray``, no stamp: stamped ``now`` on arrival)."""
    return Command(now, np.asarray(msg.data, np.float64))


class Arm(JointEmbodiment):
    """The Panda arm embodiment (see the module docstring)."""

    name = "arm"
    command_topic = "joint_trajectory"

    def make_adapter(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> ArmAdapter:
        return ArmAdapter(env_id, env_kwargs=env_kwargs)

    def default_safety(self, env_id: str, adapter: Any) -> SafetyConfig:
        low, high = joint_ranges(adapter.model, adapter.joint_names, margin=0.01)
        return SafetyConfig(
            embodiment="arm", size=len(adapter.names), period=adapter.period,
            position_low=low, position_high=high, max_velocity=PANDA_MAX_VELOCITY,
            max_acceleration=PANDA_MAX_ACCELERATION, max_step=0.25,
            workspace_low=ARM_WORKSPACE[0], workspace_high=ARM_WORKSPACE[1])

    def safety_checks(self, cfg: SafetyConfig, adapter: Any | None = None) -> ArmChecks:
        return ArmChecks(cfg, fk=None if adapter is None else adapter.fk)

    def command_bounds(self, env_id: str, adapter: Any) -> CommandBounds:
        """The model's joint range (no margin) on the 7 joints, the gripper closure in 0..1."""
        low, high = joint_ranges(adapter.model, adapter.joint_names)
        return bounds_from_safety(SafetyConfig(size=len(adapter.names), position_low=low, position_high=high),
                                  tail=[(0.0, 1.0)])

    def apply(self, env: Any, adapter: Any, cmd: Command) -> None:
        """Joint targets to the arm's position servos, the closure 0..1 to the gripper actuator."""
        values = np.asarray(cmd.values, np.float64)
        env.data.ctrl[env._arm_act] = values[:7]
        env.data.ctrl[env._grip_act] = float(np.clip(values[7], 0.0, 1.0)) * env._grip_ctrl_max

    def twin_plan(self, adapter: Any, msg: Any, current: Command | None, obs: dict[str, np.ndarray]) -> PlanPoints:
        """The ``JointTrajectory`` as ``joint_trajectory_controller`` follows it (:meth:`ArmAdapter.trajectory`):
        joints it leaves out hold ``current`` (else the measured joints and gripper closure, from 0 s)."""
        if current is not None:
            return adapter.trajectory(msg, np.asarray(current.values, np.float64))
        hold = np.append(np.asarray(obs["joint_pos"], np.float64), float(np.asarray(obs["gripper"]).reshape(-1)[0]))
        return [(0.0, Command(stamp_to_sec(msg.header.stamp), hold)), *adapter.trajectory(msg, hold)]

    def twin_joints(self, adapter: Any, obs: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The 7 joints (rad, rad/s) and ``gripper``: its measured closure 0..1 (0 open, 1 closed), velocity
        reported as 0 (not measured)."""
        grip = float(np.asarray(obs["gripper"]).reshape(-1)[0])
        return (list(adapter.names), np.append(obs["joint_pos"], grip), np.append(obs["joint_vel"], 0.0))

    def twin_inputs(self, adapter: Any) -> dict[str, TwinInput]:
        from std_msgs.msg import Float64MultiArray

        return {"forward_position": (Float64MultiArray, forward_command)}
