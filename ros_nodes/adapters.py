"""Robot adapters: robolearn actions -> conventional ROS 2 command messages, and back.

One adapter per embodiment. Each maps an env action (physical units, the policy's output) to a
:class:`~robolearn.ros_nodes.safety.Command` (what the safety filter checks), and a ``Command`` to and
from its message. Topic names are relative, so a namespace or remapping places them.

=========  =====================  ========================================  =================================
adapter    command topic          message                                   fields
=========  =====================  ========================================  =================================
arm        ``joint_trajectory``   ``trajectory_msgs/JointTrajectory``       ``joint_names`` = 7 arm joints +
                                  (ros2_control joint_trajectory_           ``gripper``; one point: positions
                                  controller)                               (rad; gripper closure 0..1),
                                                                            ``time_from_start`` = period
arm        ``forward_position``   ``std_msgs/Float64MultiArray``            the same 8 positions, for a
                                  (forward_command_controller)              ``position_controllers`` forward
humanoid   ``joint_command``      ``sensor_msgs/JointState``                ``position`` = targets (rad),
                                                                            ``velocity`` = kp (N m/rad),
                                                                            ``effort`` = kd (N m s/rad);
                                                                            ``frame_id = "pd_targets"``
quadrotor  ``rates_setpoint``     ``geometry_msgs/TwistStamped``            ``angular`` = body rates (rad/s,
                                                                            FLU), ``linear.z`` = collective
                                                                            thrust 0..1
=========  =====================  ========================================  =================================

No standard message carries per-joint PD gains, hence the documented ``JointState`` packing for the
humanoid (Unitree's ``LowCmd`` carries the same q/kp/kd). PX4's ``VehicleRatesSetpoint`` (px4_msgs, not on
PyPI) maps one to one onto the quadrotor's ``TwistStamped`` (FLU here, FRD in PX4: a bridge negates
pitch/yaw rates); the safety node re-sends the last setpoint at ``stream_hz`` because PX4 leaves
offboard mode when the stream stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, sec_to_stamp, stamp_to_sec
from robolearn.ros_nodes.safety import Command

GRIPPER = "gripper"


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

    def command(self, action: np.ndarray, joint_pos: np.ndarray, stamp: float) -> Command:
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

    msg_type_name = "trajectory_msgs/JointTrajectory"

    @staticmethod
    def msg_type() -> type:
        from trajectory_msgs.msg import JointTrajectory

        return JointTrajectory


class HumanoidAdapter:
    """Humanoid: absolute joint-position actions (rad) -> PD targets with per-joint gains.

    Args:
        joint_names: the commanded joints, in action order.
        kp: position gains ``(n,)`` N m/rad; ``kd``: damping gains ``(n,)`` N m s/rad.
    """

    embodiment = "humanoid"
    msg_type_name = "sensor_msgs/JointState"

    def __init__(self, joint_names: Sequence[str], kp: Sequence[float], kd: Sequence[float], period: float = 0.02):
        self.names = list(joint_names)
        self.period = float(period)
        self.kp, self.kd = np.asarray(kp, np.float64), np.asarray(kd, np.float64)
        if not len(self.names) == self.kp.size == self.kd.size:
            raise ValueError(f"{len(self.names)} joints, {self.kp.size} kp, {self.kd.size} kd")
        self.action_size = len(self.names)

    def reset(self) -> None:
        pass

    def command(self, action: np.ndarray, joint_pos: np.ndarray | None, stamp: float) -> Command:
        action = np.asarray(action, np.float64).reshape(-1)
        if action.size != self.action_size:
            raise MessageError(f"humanoid action of size {action.size}, expected {self.action_size}")
        return Command(stamp, action.copy(), kp=self.kp.copy(), kd=self.kd.copy())

    def to_msg(self, cmd: Command) -> Any:
        from sensor_msgs.msg import JointState

        msg = JointState()
        msg.header.stamp = sec_to_stamp(cmd.stamp)
        msg.header.frame_id = "pd_targets"
        msg.name = list(self.names)
        msg.position = np.asarray(cmd.values, np.float64).tolist()
        msg.velocity = np.asarray(self.kp if cmd.kp is None else cmd.kp, np.float64).tolist()
        msg.effort = np.asarray(self.kd if cmd.kd is None else cmd.kd, np.float64).tolist()
        return msg

    def from_msg(self, msg: Any) -> Command:
        if list(msg.name) != self.names:
            raise MessageError(f"joint names {list(msg.name)[:3]}..., expected {self.names[:3]}...")
        return Command(stamp_to_sec(msg.header.stamp), np.asarray(msg.position, np.float64),
                       kp=np.asarray(msg.velocity, np.float64), kd=np.asarray(msg.effort, np.float64))

    @staticmethod
    def msg_type() -> type:
        from sensor_msgs.msg import JointState

        return JointState


class QuadrotorAdapter:
    """Quadrotor: ``[roll_rate, pitch_rate, yaw_rate]`` rad/s + collective thrust 0..1 -> ``TwistStamped``.

    Args:
        action_order: indices of ``(roll_rate, pitch_rate, yaw_rate, thrust)`` in the env action.
        thrust_scale: env thrust units per normalized unit (1 when the env action is already 0..1).
    """

    embodiment = "quadrotor"
    msg_type_name = "geometry_msgs/TwistStamped"
    names = ["roll_rate", "pitch_rate", "yaw_rate", "thrust"]

    def __init__(self, action_order: Sequence[int] = (0, 1, 2, 3), thrust_scale: float = 1.0,
                 period: float = 0.01):
        self.order = np.asarray(action_order, int)
        if sorted(self.order.tolist()) != [0, 1, 2, 3]:
            raise ValueError(f"action_order must be a permutation of 0..3, got {list(action_order)}")
        if thrust_scale <= 0:
            raise ValueError(f"thrust_scale must be positive, got {thrust_scale}")
        self.thrust_scale = float(thrust_scale)
        self.action_size = 4
        self.period = float(period)
        self.hover_thrust = 1.0 / 2.25
        """Normalized thrust that holds the weight (set from the task's vehicle by :func:`make_adapter`)."""
        self.max_rate = 6.0
        """Largest roll/pitch rate command the vehicle's rate loop accepts (rad/s; set from the task by
        :func:`make_adapter`)."""

    def reset(self) -> None:
        pass

    def command(self, action: np.ndarray, joint_pos: np.ndarray | None, stamp: float) -> Command:
        action = np.asarray(action, np.float64).reshape(-1)
        if action.size != 4:
            raise MessageError(f"quadrotor action of size {action.size}, expected 4")
        values = action[self.order]
        values[3] /= self.thrust_scale
        return Command(stamp, values)

    def to_action(self, cmd: Command) -> np.ndarray:
        """The env action for a command (inverse of :meth:`command`)."""
        action = np.zeros(4)
        values = np.asarray(cmd.values, np.float64).copy()
        values[3] *= self.thrust_scale
        action[self.order] = values
        return action

    def to_msg(self, cmd: Command) -> Any:
        from geometry_msgs.msg import TwistStamped

        msg = TwistStamped()
        msg.header.stamp = sec_to_stamp(cmd.stamp)
        msg.header.frame_id = "base_link"
        v = np.asarray(cmd.values, np.float64)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = float(v[0]), float(v[1]), float(v[2])
        msg.twist.linear.z = float(v[3])
        return msg

    def from_msg(self, msg: Any) -> Command:
        a, lin = msg.twist.angular, msg.twist.linear
        return Command(stamp_to_sec(msg.header.stamp), np.array([a.x, a.y, a.z, lin.z], np.float64))

    @staticmethod
    def msg_type() -> type:
        from geometry_msgs.msg import TwistStamped

        return TwistStamped


COMMAND_TOPICS = {"arm": "joint_trajectory", "humanoid": "joint_command", "quadrotor": "rates_setpoint"}
"""Embodiment -> the command topic the robot consumes (the safety node's output)."""


Adapter = ArmAdapter | HumanoidAdapter | QuadrotorAdapter


def make_adapter(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Adapter:
    """The adapter for a registered task, chosen by its embodiment."""
    from robolearn.sim.registry import gym_make, task

    spec = task(env_id)
    if spec.embodiment == "arm":
        return ArmAdapter(env_id, env_kwargs=env_kwargs)

    env = gym_make(env_id, **(env_kwargs or {})).unwrapped
    try:
        period = 1.0 / float(env.control_hz)
        if spec.embodiment == "humanoid":
            names = list(env.features()["action"]["action"].names)
            kp, kd = _humanoid_gains(env, names)
            return HumanoidAdapter(names, kp, kd, period=period)
        if spec.embodiment == "quadrotor":
            if getattr(env.cfg, "action_mode", "rates") != "rates":
                raise ValueError(f"{env_id}: the quadrotor adapter needs action_mode='rates'")
            # env action: [thrust N, p, q, r]; command: [p, q, r, thrust / max thrust]
            quad = QuadrotorAdapter(action_order=(1, 2, 3, 0), thrust_scale=float(env.action_space.high[0]),
                                    period=period)
            quad.hover_thrust = float(env.params.hover_thrust) / quad.thrust_scale
            quad.max_rate = float(env.cfg.max_rate_rp)
            return quad
    finally:
        env.close()
    raise ValueError(f"{env_id}: no adapter for embodiment '{spec.embodiment}'")


def _humanoid_gains(env: Any, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Gains of the position actuators driving ``names``: kp from ``gainprm``, kd from ``-biasprm[2]``
    (or the joint damping when the actuator has none)."""
    model = env.model
    kp, kd = [], []
    for name in names:
        joint = model.joint(name).id
        act = int(np.flatnonzero(model.actuator_trnid[:, 0] == joint)[0])
        kp.append(float(model.actuator_gainprm[act, 0]))
        damping = -float(model.actuator_biasprm[act, 2])
        kd.append(damping if damping > 0 else float(model.dof_damping[model.jnt_dofadr[joint]]))
    return np.asarray(kp), np.asarray(kd)
