"""The Crazyflie quadrotor: body rates + collective thrust setpoints, as PX4 offboard control takes them.

Command topic ``rates_setpoint`` (``geometry_msgs/TwistStamped``): ``angular`` = body rates (rad/s, FLU),
``linear.z`` = collective thrust 0..1. PX4's ``VehicleRatesSetpoint`` (px4_msgs, not on PyPI) maps one to one
onto it (FLU here, FRD in PX4: a bridge negates pitch/yaw rates); the safety gate re-sends the last setpoint
at ``stream_hz`` because PX4 leaves offboard mode when the stream stops. The filter reads ``odom``
(``nav_msgs/Odometry``); the twin publishes ``odom`` and ``imu``. Safety: rate and thrust bounds; tilt,
altitude and geofence trip the latch; the fallback hovers, then lands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, sec_to_stamp, stamp_to_sec
from robolearn.ros_nodes.embodiments.base import CommandBounds, PlanPoints, StateUpdate, TwinInput
from robolearn.ros_nodes.safety import Command, RobotState, SafetyConfig, Verdict, violates

QUAD_TUMBLE_TILT = 1.2
"""Quadrotor tilt (rad, 69 deg) that trips the fallback: control is lost, not an envelope limit. Above the
scripted experts' tilt commands (40 deg hover, 60 deg gates) and the 0.97 rad a refined hover policy flew in
sim; a 0.8 rad trip stopped that policy in its first second over ROS 2."""


class QuadrotorAdapter:
    """Quadrotor: ``[roll_rate, pitch_rate, yaw_rate]`` rad/s + collective thrust 0..1 -> ``TwistStamped``.

    Args:
        action_order: indices of ``(roll_rate, pitch_rate, yaw_rate, thrust)`` in the env action.
        thrust_scale: env thrust units per normalized unit (1 when the env action is already 0..1).
        period: control period (s).
    """

    embodiment = "quadrotor"
    msg_type_name = "geometry_msgs/TwistStamped"
    names = ["roll_rate", "pitch_rate", "yaw_rate", "thrust"]
    joint_names: list[str] = []

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
        """Normalized thrust that holds the weight (set from the task's vehicle by :meth:`Quadrotor.make_adapter`)."""
        self.max_rate = 6.0
        """Largest roll/pitch rate command the vehicle's rate loop accepts (rad/s; set from the task by
        :meth:`Quadrotor.make_adapter`)."""

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


class QuadrotorChecks:
    """Rate and thrust bounds on commands; tilt, altitude and geofence on the state; hover-then-land fallback."""

    def __init__(self, cfg: SafetyConfig):
        if cfg.size != 4:
            raise ValueError(f"safety.size must be 4 for a quadrotor, got {cfg.size}")
        self.cfg = cfg

    def limit(self, values: np.ndarray, state: RobotState) -> Verdict:
        out, clipped, cfg = values.copy(), [], self.cfg
        if (np.abs(out[:3]) > cfg.max_rate).any():
            if violates(cfg, "rate", clipped):
                return Verdict(None, "body rate limit")
            out[:3] = np.clip(out[:3], -cfg.max_rate, cfg.max_rate)
        if not 0.0 <= out[3] <= 1.0:
            if violates(cfg, "thrust", clipped):
                return Verdict(None, "thrust outside 0..1")
            out[3] = min(max(out[3], 0.0), 1.0)
        return Verdict(Command(0.0, out), None, clipped)

    def observed(self, values: np.ndarray) -> None:
        pass

    def state_violation(self, state: RobotState) -> str | None:
        cfg, s = self.cfg, state
        if s.quat is not None and tilt_of(np.asarray(s.quat)) > cfg.max_tilt:
            return f"tilt above {cfg.max_tilt:.2f} rad"
        if s.position is not None:
            p = np.asarray(s.position)
            if p[2] > cfg.max_altitude or (cfg.min_altitude >= 0 and p[2] < cfg.min_altitude):
                return f"altitude {p[2]:.2f} m outside [{cfg.min_altitude}, {cfg.max_altitude}]"
            if np.hypot(*(p[:2] - np.asarray(cfg.geofence_center))) > cfg.geofence_radius:
                return f"outside the {cfg.geofence_radius} m geofence"
        return None

    def forget(self) -> None:
        pass

    def start_fallback(self, state: RobotState) -> None:
        pass

    def fallback(self, state: RobotState, now: float, since: float | None) -> Command | None:
        """Hover for ``hover_seconds`` after ``since``, then land; None until odometry is known."""
        s, cfg = state, self.cfg
        if s.quat is None or s.position is None or s.velocity is None:
            return None
        landing = since is not None and now - since > cfg.hover_seconds
        return Command(now, hover_or_land(np.asarray(s.quat), np.asarray(s.position), np.asarray(s.velocity),
                                          cfg.hover_thrust, land=landing))


def tilt_of(quat: np.ndarray) -> float:
    """Angle (rad) between the body z axis of a wxyz quaternion and world z."""
    w, x, y, z = quat / np.linalg.norm(quat)
    return float(np.arccos(np.clip(1.0 - 2.0 * (x * x + y * y), -1.0, 1.0)))


def hover_or_land(quat: np.ndarray, position: np.ndarray, velocity: np.ndarray, hover_thrust: float,
                  land: bool, descent_speed: float = 0.3, k_att: float = 4.0, k_vz: float = 0.8, k_vxy: float = 1.0,
                  max_brake_tilt: float = 0.5) -> np.ndarray:
    """Rates (rad/s) and normalized thrust that stop the quadrotor where it is and hold (or sink at) a vertical speed.

    ``quat`` wxyz body-to-world, ``position`` m and ``velocity`` m/s in the world frame. The body z axis is turned
    toward the thrust direction that brakes the horizontal velocity (``k_vxy`` 1/s, tilted at most
    ``max_brake_tilt`` rad) while the thrust holds ``vz = 0`` (hover) or ``-descent_speed`` (land; the thrust is
    cut 3 cm above z = 0). Levelling alone (the earlier fallback) left a vehicle tripped mid-manoeuvre coasting at
    its speed, and a tumble trip at 1.2 rad and 3 m/s flew it out of QuadHover's 5 m arena within a second.
    Returns ``[roll_rate, pitch_rate, yaw_rate, thrust]``.
    """
    w, x, y, z = quat / np.linalg.norm(quat)
    body_z = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    rot_t = np.array([  # world -> body
        [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)],
        [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)],
        [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)],
    ])
    brake = -k_vxy * np.asarray(velocity[:2], np.float64)  # horizontal acceleration wanted, in units of g
    limit = np.tan(max_brake_tilt)
    brake *= min(1.0, limit / max(float(np.linalg.norm(brake)), 1e-9))
    want_z = np.array([brake[0], brake[1], 1.0]) / np.sqrt(1.0 + brake @ brake)
    err_world = np.cross(body_z, want_z)  # rotation axis that turns the body z axis onto want_z
    rates = k_att * (rot_t @ err_world)
    vz_target = -descent_speed if land else 0.0
    if land and position[2] < 0.03:
        return np.array([0.0, 0.0, 0.0, 0.0])
    # the wanted acceleration (in g, gravity included) projected on the body z axis: a vehicle tilted far from it
    # gets little thrust (it would push sideways) until its rates have turned it
    accel = np.array([brake[0], brake[1], 1.0 + k_vz * (vz_target - velocity[2])])
    thrust = hover_thrust * float(accel @ body_z) / max(float(want_z @ body_z), 0.5) ** 2
    return np.array([rates[0], rates[1], 0.0, min(max(thrust, 0.0), 1.0)])


class Quadrotor:
    """The quadrotor embodiment (see the module docstring)."""

    name = "quadrotor"
    command_topic = "rates_setpoint"
    streams_setpoints = True

    def twin_plan(self, adapter: Any, msg: Any, current: Command | None, obs: dict[str, np.ndarray]) -> PlanPoints:
        """One rates setpoint, applied at once."""
        return [(0.0, adapter.from_msg(msg))]

    def twin_joints(self, adapter: Any, obs: dict[str, np.ndarray]) -> None:
        """No joints: the quadrotor publishes ``odom`` and ``imu`` instead of ``joint_states``."""
        return None

    def make_adapter(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> QuadrotorAdapter:
        from robolearn.sim.registry import gym_make

        env = gym_make(env_id, **(env_kwargs or {})).unwrapped
        try:
            if getattr(env.cfg, "action_mode", "rates") != "rates":
                raise ValueError(f"{env_id}: the quadrotor adapter needs action_mode='rates'")
            # env action: [thrust N, p, q, r]; command: [p, q, r, thrust / max thrust]
            quad = QuadrotorAdapter(action_order=(1, 2, 3, 0), thrust_scale=float(env.action_space.high[0]),
                                    period=1.0 / float(env.control_hz))
            quad.hover_thrust = float(env.params.hover_thrust) / quad.thrust_scale
            quad.max_rate = float(env.cfg.max_rate_rp)
            return quad
        finally:
            env.close()

    def default_safety(self, env_id: str, adapter: Any) -> SafetyConfig:
        return SafetyConfig(embodiment="quadrotor", size=4, period=adapter.period, hover_thrust=adapter.hover_thrust,
                            max_rate=adapter.max_rate, max_tilt=QUAD_TUMBLE_TILT)

    def safety_checks(self, cfg: SafetyConfig, adapter: Any | None = None) -> QuadrotorChecks:
        return QuadrotorChecks(cfg)

    def subscribe_state(self, node: Any, adapter: Any, update: StateUpdate) -> None:
        """``odom`` (``nav_msgs/Odometry``, sensor-data QoS) -> position, attitude wxyz, linear velocity."""
        from nav_msgs.msg import Odometry
        from rclpy.qos import qos_profile_sensor_data

        def on_odom(msg: Any) -> None:
            pose, twist = msg.pose.pose, msg.twist.twist
            o = pose.orientation
            update(position=np.array([pose.position.x, pose.position.y, pose.position.z]),
                   quat=np.array([o.w, o.x, o.y, o.z]),
                   velocity=np.array([twist.linear.x, twist.linear.y, twist.linear.z]))

        node.create_subscription(Odometry, "odom", on_odom, qos_profile_sensor_data)

    def state_from_observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        return {"position": obs.get("position"), "quat": obs.get("attitude"), "velocity": obs.get("velocity")}

    def command_bounds(self, env_id: str, adapter: Any) -> CommandBounds:
        """Body rates within the vehicle's rate loop (``max_rate`` rad/s), thrust in 0..1."""
        rate = float(adapter.max_rate)
        return CommandBounds(np.array([-rate, -rate, -rate, 0.0]), np.array([rate, rate, rate, 1.0]))

    def apply(self, env: Any, adapter: Any, cmd: Command) -> None:
        """The command as the task's rate action, through its ``pre_step``."""
        env.pre_step(adapter.to_action(cmd).astype(np.float32))

    def twin_inputs(self, adapter: Any) -> dict[str, TwinInput]:
        return {}

    def twin_outputs(self, node: Any) -> Callable[[dict[str, np.ndarray], float], None] | None:
        return OdometryPublisher(node).publish


class OdometryPublisher:
    """Publishes ``odom`` and ``imu`` from the quadrotor observation (``position``, ``attitude`` wxyz,
    ``velocity`` world frame, ``body_rates``; any missing key skips the message)."""

    def __init__(self, node: Any):
        from nav_msgs.msg import Odometry
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Imu

        self.Odometry, self.Imu = Odometry, Imu
        self.odom = node.create_publisher(Odometry, "odom", qos_profile_sensor_data)
        self.imu = node.create_publisher(Imu, "imu", qos_profile_sensor_data)

    def publish(self, obs: dict[str, np.ndarray], now: float) -> None:
        pos, quat, vel, rate = (obs.get(k) for k in ("position", "attitude", "velocity", "body_rates"))
        if pos is None or quat is None or vel is None or rate is None:
            return
        msg = self.Odometry()
        msg.header.stamp, msg.header.frame_id, msg.child_frame_id = sec_to_stamp(now), "world", "base_link"
        pose, twist = msg.pose.pose, msg.twist.twist
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in pos)
        pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (float(v) for v in quat)
        twist.linear.x, twist.linear.y, twist.linear.z = (float(v) for v in vel)
        twist.angular.x, twist.angular.y, twist.angular.z = (float(v) for v in rate)
        self.odom.publish(msg)
        imu = self.Imu()
        imu.header = msg.header
        imu.orientation = pose.orientation
        imu.angular_velocity = twist.angular
        self.imu.publish(imu)
