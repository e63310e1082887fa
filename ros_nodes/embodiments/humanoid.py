"""The Unitree G1 humanoid: absolute joint position targets with per-joint PD gains.

Command topic ``joint_command`` (``sensor_msgs/JointState``): ``position`` = targets (rad), ``velocity`` = kp
(N m/rad), ``effort`` = kd (N m s/rad), ``frame_id = "pd_targets"``. The twin takes any order and subset of the
joints by name (the others hold; empty ``velocity`` / ``effort``: keep the gains), as a ``JointState``
command interface does. No standard message carries per-joint
PD gains, hence this documented packing (Unitree's ``LowCmd`` carries the same q/kp/kd). Safety: joint range
and per-step change (0.5 rad); the fallback is damping (``kp = 0``, ``kd = damping``) at the measured joints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, sec_to_stamp, stamp_to_sec
from robolearn.ros_nodes.embodiments.base import JointEmbodiment, PlanPoints, joint_ranges, name_index
from robolearn.ros_nodes.safety import Command, JointTargetChecks, RobotState, SafetyConfig


class HumanoidAdapter:
    """Humanoid: absolute joint-position actions (rad) -> PD targets with per-joint gains.

    Args:
        joint_names: the commanded joints, in action order.
        kp: position gains ``(n,)`` N m/rad; ``kd``: damping gains ``(n,)`` N m s/rad.
        period: control period (s).
    """

    embodiment = "humanoid"
    msg_type_name = "sensor_msgs/JointState"

    def __init__(self, joint_names: Sequence[str], kp: Sequence[float], kd: Sequence[float], period: float = 0.02):
        self.names = list(joint_names)
        self.joint_names = self.names
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

    def partial(self, msg: Any, hold: Command) -> Command:
        """A ``JointState`` PD command naming any order and subset of :attr:`names` -> the full command: joints
        not named keep ``hold``'s target and gains; ``velocity`` (kp) and ``effort`` (kd) are one per name, or
        empty to keep ``hold``'s gains. Raises :class:`MessageError` (``unknown joint``, ``duplicate joint``,
        ``position/name length mismatch``, ``gain/name length mismatch``)."""
        index = name_index(msg.name, self.names)
        if len(msg.position) != len(index):
            raise MessageError(f"{len(msg.position)} positions for {len(index)} names", "position/name length mismatch")
        if any(len(g) not in (0, len(index)) for g in (msg.velocity, msg.effort)):
            raise MessageError(f"{len(msg.velocity)} kp, {len(msg.effort)} kd for {len(index)} names",
                               "gain/name length mismatch")
        values = np.array(hold.values, np.float64)
        kp = np.array(self.kp if hold.kp is None else hold.kp, np.float64)
        kd = np.array(self.kd if hold.kd is None else hold.kd, np.float64)
        values[index] = np.asarray(msg.position, np.float64)
        for gains, given in ((kp, msg.velocity), (kd, msg.effort)):
            if len(given):
                gains[index] = np.asarray(given, np.float64)
        return Command(stamp_to_sec(msg.header.stamp), values, kp=kp, kd=kd)

    @staticmethod
    def msg_type() -> type:
        from sensor_msgs.msg import JointState

        return JointState


class HumanoidChecks(JointTargetChecks):
    """Joint-target limits on every commanded joint; the fallback is damping at the held position."""

    def __init__(self, cfg: SafetyConfig):
        super().__init__(cfg, cfg.size)

    def fallback(self, state: RobotState, now: float, since: float | None) -> Command | None:
        hold = self.hold(state)
        if hold is None:
            return None
        return Command(now, hold.copy(), kp=np.zeros(self.cfg.size), kd=np.full(self.cfg.size, self.cfg.damping))


def actuator_gains(model: Any, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Gains of the position actuators driving ``names``: kp (N m/rad) from ``gainprm``, kd (N m s/rad) from
    ``-biasprm[2]`` (or the joint damping when the actuator has none)."""
    kp, kd = [], []
    for name in names:
        joint = model.joint(name).id
        act = int(np.flatnonzero(model.actuator_trnid[:, 0] == joint)[0])
        kp.append(float(model.actuator_gainprm[act, 0]))
        damping = -float(model.actuator_biasprm[act, 2])
        kd.append(damping if damping > 0 else float(model.dof_damping[model.jnt_dofadr[joint]]))
    return np.asarray(kp), np.asarray(kd)


class Humanoid(JointEmbodiment):
    """The G1 humanoid embodiment (see the module docstring)."""

    name = "humanoid"
    command_topic = "joint_command"

    def make_adapter(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> HumanoidAdapter:
        from robolearn.sim.registry import gym_make

        env = gym_make(env_id, **(env_kwargs or {})).unwrapped
        try:
            names = list(env.features()["action"]["action"].names)
            kp, kd = actuator_gains(env.model, names)
            return HumanoidAdapter(names, kp, kd, period=1.0 / float(env.control_hz))
        finally:
            env.close()

    def default_safety(self, env_id: str, adapter: Any) -> SafetyConfig:
        from robolearn.sim.registry import gym_make

        env = gym_make(env_id).unwrapped
        low, high = joint_ranges(env.model, adapter.names)
        period = 1.0 / env.control_hz
        env.close()
        return SafetyConfig(embodiment="humanoid", size=len(adapter.names), period=period,
                            position_low=low, position_high=high, max_step=0.5)

    def safety_checks(self, cfg: SafetyConfig, adapter: Any | None = None) -> HumanoidChecks:
        return HumanoidChecks(cfg)

    def twin_plan(self, adapter: Any, msg: Any, current: Command | None, obs: dict[str, np.ndarray]) -> PlanPoints:
        """The PD command applied at once; joints it leaves out hold ``current`` (else the measured joints with
        the actuators' own gains): :meth:`HumanoidAdapter.partial`."""
        hold = current or Command(0.0, np.asarray(obs["joint_pos"], np.float64), kp=adapter.kp, kd=adapter.kd)
        return [(0.0, adapter.partial(msg, hold))]

    def apply(self, env: Any, adapter: Any, cmd: Command) -> None:
        """The command's PD gains to the position actuators, its targets through the task's ``pre_step``."""
        if cmd.kp is not None and cmd.kd is not None:
            set_gains(env.model, cmd.kp, cmd.kd)
        env.pre_step(np.asarray(cmd.values, np.float64).astype(np.float32))


def set_gains(model: Any, kp: np.ndarray, kd: np.ndarray) -> None:
    """PD gains of the first ``len(kp)`` position actuators (MuJoCo: force = kp (target - q) - kd qdot)."""
    n = len(kp)
    model.actuator_gainprm[:n, 0] = kp
    model.actuator_biasprm[:n, 1] = -kp
    model.actuator_biasprm[:n, 2] = -kd
