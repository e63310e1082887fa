"""The embodiment interface: what a robot kind brings to the ROS nodes.

An :class:`Embodiment` holds everything the nodes would otherwise branch on: the adapter between env
actions and the robot's command message (:class:`Adapter`), the command topic, the safety filter's
defaults, checks and fallback, where the filter reads the measured state, and how the MuJoCo twin applies a
command. :class:`JointEmbodiment` is the common case (joint position targets, state from ``joint_states``);
an embodiment overrides what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robolearn.ros_nodes.safety import Command, SafetyChecks, SafetyConfig

StateUpdate = Callable[..., None]
"""``update(**measured)``: stores :class:`~robolearn.ros_nodes.safety.RobotState` fields (the filter's
``update_state``)."""

PlanPoints = list[tuple[float, Command]]
"""A command trajectory: (time from its start, s; the full command at that time), times non-decreasing."""

TwinInput = tuple[type, Callable[[Any, float], Command]]
"""A further command input of the twin: the message type, and message + arrival time (s) -> Command."""


LIMIT_TOLERANCE = 0.02
"""How far (rad) past a joint's model range a robot still accepts a target: a hold of the measured position may
sit just past the range, as MuJoCo's soft joint limits (and a real encoder) allow."""


@dataclass
class CommandBounds:
    """What a robot's driver accepts, whoever sent the command: the command length and each value's range.

    The last line of defence behind the safety filter (which clips into tighter limits), so that a command that
    bypassed it cannot reach the actuators with NaN, a wrong length, negative gains or a target outside the
    robot's physical range.
    """

    low: np.ndarray
    """``(n,)`` lower bound of each command value, physical units (rad, 0..1, rad/s); -inf: none."""
    high: np.ndarray
    """``(n,)`` upper bound of each command value; +inf: none."""

    def check(self, cmd: Command) -> str | None:
        """Why ``cmd`` is refused (a short reason, one counter per reason), or None when it is acceptable."""
        values = np.asarray(cmd.values, np.float64).reshape(-1)
        if values.size != self.low.size:
            return f"wrong length {values.size}, expected {self.low.size}"
        gains = [np.asarray(g, np.float64).reshape(-1) for g in (cmd.kp, cmd.kd) if g is not None]
        if not np.isfinite(values).all() or not all(np.isfinite(g).all() for g in gains):
            return "NaN or inf"
        if any(g.size != values.size or (g < 0).any() for g in gains):
            return "PD gains of the wrong length or negative"
        if ((values < self.low) | (values > self.high)).any():
            return "outside the joint limits"
        return None


def bounds_from_safety(cfg: SafetyConfig, tail: Sequence[tuple[float, float]] = (),
                       tolerance: float = LIMIT_TOLERANCE) -> CommandBounds:
    """Bounds of a joint-position command: ``cfg``'s position range (widened by ``tolerance`` rad) on the leading
    joints, then ``tail`` (low, high) for the values after them; values without either are unbounded."""
    low, high = np.full(cfg.size, -np.inf), np.full(cfg.size, np.inf)
    n = len(cfg.position_low)
    low[:n], high[:n] = np.asarray(cfg.position_low) - tolerance, np.asarray(cfg.position_high) + tolerance
    for i, (lo, hi) in enumerate(tail):
        low[n + i], high[n + i] = lo, hi
    return CommandBounds(low, high)


class Adapter(Protocol):
    """Env actions <-> one robot's command message (see :mod:`robolearn.ros_nodes.embodiments`)."""

    names: list[str]
    """Names of the command values, in order."""
    joint_names: list[str]
    """The commanded joints whose measured positions the filter and ``joint_states`` carry (empty: none)."""
    action_size: int
    """Length ``Da`` of one env action."""
    period: float
    """Control period (s)."""
    msg_type_name: str
    """``package/Message`` of the command message."""

    def reset(self) -> None:
        """Forget per-episode state (previous targets)."""
        ...

    def command(self, action: np.ndarray, joint_pos: np.ndarray | None, stamp: float) -> Command:
        """The command for env ``action`` ``(Da,)`` at the measured ``joint_pos`` (rad), stamped ``stamp`` (s)."""
        ...

    def to_msg(self, cmd: Command) -> Any:
        """The command message (with a header stamp)."""
        ...

    def from_msg(self, msg: Any) -> Command:
        """A command message -> Command; raises :class:`~robolearn.ros_nodes.convert.MessageError` (a
        ValueError) when malformed."""
        ...

    def msg_type(self) -> type:
        """The command message class."""
        ...


class Embodiment(Protocol):
    """One kind of robot, as the policy, safety and twin nodes see it."""

    name: str
    """Key in ``EMBODIMENTS``; the ``embodiment`` of its tasks' ``TaskSpec``."""
    command_topic: str
    """Topic the robot consumes commands on (relative; the safety gate's output)."""
    streams_setpoints: bool
    """The safety gate re-sends the last accepted command at ``stream_hz`` (a PX4-style setpoint stream)."""

    def make_adapter(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> Adapter:
        """The adapter for a registered task of this embodiment."""
        ...

    def default_safety(self, env_id: str, adapter: Adapter) -> SafetyConfig:
        """Limits from the task (its model's joint ranges, datasheet rates, control period)."""
        ...

    def safety_checks(self, cfg: SafetyConfig, adapter: Adapter | None = None) -> SafetyChecks:
        """The filter's embodiment part for ``cfg`` (raises ValueError naming a field that does not fit)."""
        ...

    def subscribe_state(self, node: Any, adapter: Adapter, update: StateUpdate) -> None:
        """Subscribe ``node`` to the robot's measured state, passing it to ``update``."""
        ...

    def state_from_observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        """The filter's robot state (``RobotState`` fields) from an env observation (the inline filter's)."""
        ...

    def apply(self, env: Any, adapter: Adapter, cmd: Command) -> None:
        """Set the twin's actuators (``env``: the unwrapped robolearn task) from a filtered command."""
        ...

    def command_bounds(self, env_id: str, adapter: Adapter) -> CommandBounds:
        """What the robot's driver (the twin) accepts from any sender: length, finite values, physical ranges."""
        ...

    def twin_inputs(self, adapter: Adapter) -> dict[str, TwinInput]:
        """Command topics the twin takes besides ``command_topic``."""
        ...

    def twin_plan(self, adapter: Adapter, msg: Any, current: Command | None,
                  obs: dict[str, np.ndarray]) -> PlanPoints:
        """The twin's trajectory for a command message on ``command_topic``: full commands over time, to be
        followed from ``current`` (the setpoint now; None: none yet, hold the measured state in ``obs``).
        Raises :class:`~robolearn.ros_nodes.convert.MessageError` (with a counted ``reason``) when malformed."""
        ...

    def twin_joints(self, adapter: Adapter, obs: dict[str, np.ndarray]
                    ) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        """(names, positions, velocities) the twin publishes on ``joint_states``; None: no joints."""
        ...

    def twin_outputs(self, node: Any) -> Callable[[dict[str, np.ndarray], float], None] | None:
        """Make the twin's extra state publishers on ``node``; returns publish(observation, now s), or None."""
        ...


def subscribe_joint_states(node: Any, names: Sequence[str], update: StateUpdate) -> None:
    """``joint_states`` (sensor-data QoS) -> ``update(joint_pos=...)`` in the order of ``names`` (messages
    lacking any of them are skipped)."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    names = list(names)

    def on_joints(msg: Any) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in names):
            update(joint_pos=np.asarray(msg.position, np.float64)[[index[n] for n in names]])

    node.create_subscription(JointState, "joint_states", on_joints, qos_profile_sensor_data)


class JointEmbodiment:
    """Defaults of a joint-position robot: state from ``joint_states``, ``joint_pos`` from observations, no
    setpoint stream, no further twin topics. Subclasses set ``name``, ``command_topic`` and the methods
    without a default here."""

    name = ""
    command_topic = ""
    streams_setpoints = False

    def subscribe_state(self, node: Any, adapter: Adapter, update: StateUpdate) -> None:
        subscribe_joint_states(node, adapter.joint_names, update)

    def state_from_observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        return {"joint_pos": np.asarray(obs["joint_pos"], np.float64)} if "joint_pos" in obs else {}

    def twin_inputs(self, adapter: Adapter) -> dict[str, TwinInput]:
        return {}

    def twin_plan(self, adapter: Adapter, msg: Any, current: Command | None,
                  obs: dict[str, np.ndarray]) -> PlanPoints:
        """One command, applied at once (the message's own ``from_msg``)."""
        return [(0.0, adapter.from_msg(msg))]

    def twin_joints(self, adapter: Adapter, obs: dict[str, np.ndarray]
                    ) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        """The adapter's ``joint_names`` with the observation's ``joint_pos`` (rad), ``joint_vel`` (rad/s)."""
        if "joint_pos" not in obs or not adapter.joint_names:
            return None
        return list(adapter.joint_names), obs["joint_pos"], obs["joint_vel"]

    def command_bounds(self, env_id: str, adapter: Adapter) -> CommandBounds:
        """The joint range of ``default_safety`` (its ``position_low/high``, if any) on the leading values."""
        return bounds_from_safety(self.default_safety(env_id, adapter))  # type: ignore[attr-defined]

    def twin_outputs(self, node: Any) -> Callable[[dict[str, np.ndarray], float], None] | None:
        return None


def name_index(names: Sequence[str], known: Sequence[str]) -> list[int]:
    """Where each of ``names`` (a command's, any order and subset) sits in ``known`` (the robot's order);
    raises :class:`~robolearn.ros_nodes.convert.MessageError` (``unknown joint``, ``duplicate joint``)."""
    from robolearn.ros_nodes.convert import MessageError

    names, known = list(names), list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MessageError(f"joint names {unknown[:5]} not among the robot's {known[:3]}...", "unknown joint")
    if len(set(names)) != len(names):
        raise MessageError(f"joint names {names} repeat a name", "duplicate joint")
    return [known.index(n) for n in names]


def joint_ranges(model: Any, joints: Sequence[str], margin: float = 0.0) -> tuple[list[float], list[float]]:
    """Lower and upper limits (rad) of the named joints of a MuJoCo model, ``margin`` inside their range."""
    low, high = (model.jnt_range[[model.joint(j).id for j in joints]] + [margin, -margin]).T
    return low.tolist(), high.tolist()


class TwinPlan:
    """A command trajectory the twin follows: linear interpolation over time from the setpoint it started at.

    Args:
        t0: time (s, the twin's simulated clock) the trajectory starts.
        start: the setpoint at ``t0`` (interpolated from towards the first point).
        points: (s after ``t0``, full command), times non-decreasing.
    """

    def __init__(self, t0: float, start: Command | None, points: PlanPoints):
        self.t0, self.start, self.points = float(t0), start, list(points)

    @property
    def end(self) -> float:
        """Time (s, twin clock) the last point is reached."""
        return self.t0 + self.points[-1][0]

    def sample(self, t: float) -> Command:
        """The setpoint at time ``t`` (s, twin clock): linear between the surrounding points, the last after."""
        dt = t - self.t0
        t_prev, prev = 0.0, self.start
        for t_i, cmd in self.points:
            if dt < t_i:
                if prev is None or t_i <= t_prev:
                    return cmd
                frac = (dt - t_prev) / (t_i - t_prev)
                values = np.asarray(prev.values, np.float64) * (1.0 - frac) + np.asarray(cmd.values) * frac
                return Command(cmd.stamp, values, cmd.kp, cmd.kd)
            t_prev, prev = t_i, cmd
        return self.points[-1][1]
