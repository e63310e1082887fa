"""A toy embodiment in one file: what a new robot kind costs (this file plus one line in a copy of EMBODIMENTS).

The Panda of an existing task, driven by its 7 joint position targets alone (rad; the gripper stays as it is),
sent as a ``sensor_msgs/JointState`` on ``toy_command``. Its safety check is its own (each target at most
:data:`TOY_STEP` from the measured joint, clipped, counted as ``clip:toy_step``), written against the
:class:`~robolearn.ros_nodes.safety.SafetyChecks` protocol from scratch; its fallback holds the measured joints.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, sec_to_stamp, stamp_to_sec
from robolearn.ros_nodes.embodiments.base import JointEmbodiment
from robolearn.ros_nodes.safety import Command, RobotState, SafetyConfig, Verdict, violates

TOY_STEP = 0.05
"""Largest lead of a target over the measured joint position (rad)."""
JOINTS = [f"joint{i}" for i in range(1, 8)]


class ToyAdapter:
    """Env action: joint deltas ``(7,)`` rad added to the measured position -> ``JointState`` targets."""

    msg_type_name = "sensor_msgs/JointState"
    names = joint_names = JOINTS
    action_size = 7

    def __init__(self, period: float):
        self.period = period

    def reset(self) -> None:
        pass

    def command(self, action: np.ndarray, joint_pos: np.ndarray | None, stamp: float) -> Command:
        return Command(stamp, np.asarray(joint_pos, np.float64) + np.asarray(action, np.float64))

    def to_msg(self, cmd: Command) -> Any:
        from sensor_msgs.msg import JointState

        msg = JointState(name=list(JOINTS), position=np.asarray(cmd.values, np.float64).tolist())
        msg.header.stamp = sec_to_stamp(cmd.stamp)
        return msg

    def from_msg(self, msg: Any) -> Command:
        if list(msg.name) != JOINTS:
            raise MessageError(f"joint names {list(msg.name)}, expected {JOINTS}")
        return Command(stamp_to_sec(msg.header.stamp), np.asarray(msg.position, np.float64))

    @staticmethod
    def msg_type() -> type:
        from sensor_msgs.msg import JointState

        return JointState


class ToyChecks:
    """Targets within :data:`TOY_STEP` of the measured joints; the fallback holds them."""

    def __init__(self, cfg: SafetyConfig):
        self.cfg, self._hold = cfg, None

    def limit(self, values: np.ndarray, state: RobotState) -> Verdict:
        out, clipped = values.copy(), []
        if state.joint_pos is not None:
            q = np.asarray(state.joint_pos, np.float64)
            if (np.abs(out - q) > TOY_STEP).any():
                if violates(self.cfg, "toy_step", clipped):
                    return Verdict(None, "toy step")
                out = np.clip(out, q - TOY_STEP, q + TOY_STEP)
        return Verdict(Command(0.0, out), None, clipped)

    def observed(self, values: np.ndarray) -> None:
        pass

    def state_violation(self, state: RobotState) -> str | None:
        return None

    def forget(self) -> None:
        pass

    def start_fallback(self, state: RobotState) -> None:
        self._hold = None if state.joint_pos is None else np.asarray(state.joint_pos, np.float64)

    def fallback(self, state: RobotState, now: float, since: float | None) -> Command | None:
        if self._hold is None and state.joint_pos is not None:
            self._hold = np.asarray(state.joint_pos, np.float64)
        return None if self._hold is None else Command(now, self._hold.copy())


class Toy(JointEmbodiment):
    """The toy embodiment (see the module docstring)."""

    name = "toy"
    command_topic = "toy_command"

    def make_adapter(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> ToyAdapter:
        from robolearn.sim.registry import gym_make

        env = gym_make(env_id, **(env_kwargs or {})).unwrapped
        period = 1.0 / float(env.control_hz)
        env.close()
        return ToyAdapter(period)

    def default_safety(self, env_id: str, adapter: Any) -> SafetyConfig:
        return SafetyConfig(embodiment="toy", size=7, period=adapter.period)

    def safety_checks(self, cfg: SafetyConfig, adapter: Any | None = None) -> ToyChecks:
        return ToyChecks(cfg)

    def apply(self, env: Any, adapter: Any, cmd: Command) -> None:
        env.data.ctrl[env._arm_act] = np.asarray(cmd.values, np.float64)
