"""``sim_robot_node``: a MuJoCo task exposed as a robot, the stand-in for hardware.

It steps the task at ``step_hz`` (wall clock; the task's own control period, e.g. 0.05 s, is the sim
time of one step, so ``step_hz`` above the task's rate runs faster than real time) with the latest
command it received, and publishes what a robot would:

* ``joint_states`` (``sensor_msgs/JointState``, sensor-data QoS): arm/humanoid joints, rad and rad/s;
* ``observation`` (``std_msgs/Float64MultiArray``, sensor-data QoS): the full observation, including the
  simulator's privileged object state (layout in :mod:`robolearn.ros_nodes.convert`);
* ``odom`` (``nav_msgs/Odometry``) and ``imu`` (``sensor_msgs/Imu``) for the quadrotor;
* ``image/<camera>`` (``sensor_msgs/Image``, rgb8) when ``camera`` is set;
* ``episode`` (``std_msgs/String``, reliable): one JSON line per finished episode
  (``episode``, ``success``, ``return``, ``length``), and ``{"done": true}`` after ``episodes``.

It consumes the command message of its embodiment's adapter (:mod:`robolearn.ros_nodes.adapters`) on
the adapter's topic (reliable, keep-last 1), and for the arm also ``forward_position``. Until the first
command arrives, and between commands, the joint servos hold their last targets, as a real arm does.

Each new episode puts the robot back in a safe state, as an operator re-placing it would; the twin then
calls ``rearm_service`` (the safety node's ``~/rearm``, if it is up), so that a state-limit trip in one
episode (a quadrotor tilted past its limit) does not fly every later episode on the fallback. It never
clears an e-stop.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from robolearn.ros_nodes.adapters import COMMAND_TOPICS, ArmAdapter, HumanoidAdapter, QuadrotorAdapter, make_adapter
from robolearn.ros_nodes.convert import clock_sec, image_msg, joint_state_msg, observation_msg, sec_to_stamp
from robolearn.ros_nodes.rosenv import require_rclpy, shutdown_node, spin_until_shutdown
from robolearn.ros_nodes.safety import Command


class SimRobot:
    """The task as a robot, without ROS: ``apply`` a command, ``step``, read the observation.

    Args:
        env_id: a registered robolearn task.
        seed: episode ``i`` resets with ``seed + i``.
        env_kwargs: passed to ``gymnasium.make``.
        max_steps: steps per episode unless the task ends it (0: the task's own limit).
    """

    def __init__(self, env_id: str, seed: int = 0, env_kwargs: dict[str, Any] | None = None, max_steps: int = 0):

        from robolearn.sim.registry import gym_make, task

        self.spec = task(env_id)
        self.wrapped = gym_make(env_id, **(env_kwargs or {}))
        self.env = self.wrapped.unwrapped
        self.adapter = make_adapter(env_id, env_kwargs)
        self.max_steps = int(max_steps) or self.spec.max_episode_steps
        self.seed, self.episode, self.step_count, self.ret = seed, 0, 0, 0.0
        self.held = 0
        """Steps of this episode that ran without a new command (the servos held their targets)."""
        self.obs: dict[str, np.ndarray] = {}

    def reset(self) -> dict[str, np.ndarray]:
        """Start episode ``self.episode`` (seed ``seed + episode``)."""
        self.obs, _ = self.env.reset(seed=self.seed + self.episode)
        self.step_count, self.ret, self.held = 0, 0.0, 0
        self.adapter.reset()
        return self.obs

    def apply(self, cmd: Command) -> None:
        """Set the actuators from a (filtered) command; it acts from the next :meth:`step` on."""
        env, values = self.env, np.asarray(cmd.values, np.float64)
        if isinstance(self.adapter, ArmAdapter):
            env.data.ctrl[env._arm_act] = values[:7]
            env.data.ctrl[env._grip_act] = float(np.clip(values[7], 0.0, 1.0)) * env._grip_ctrl_max
        elif isinstance(self.adapter, HumanoidAdapter):
            if cmd.kp is not None and cmd.kd is not None:
                self._set_gains(cmd.kp, cmd.kd)
            env.pre_step(values.astype(np.float32))
        elif isinstance(self.adapter, QuadrotorAdapter):
            env.pre_step(self.adapter.to_action(cmd).astype(np.float32))

    def _set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        """PD gains of the position actuators (MuJoCo: force = kp (target - q) - kd qdot)."""
        m, n = self.env.model, len(kp)
        m.actuator_gainprm[:n, 0] = kp
        m.actuator_biasprm[:n, 1] = -kp
        m.actuator_biasprm[:n, 2] = -kd

    def step(self) -> tuple[bool, dict[str, Any]]:
        """One control step; returns (episode over, info with ``success``, ``return``, ``length``)."""
        self.env.physics_step()
        self.obs, reward, terminated, _, info = self.env.post_step()
        self.step_count += 1
        self.ret += float(reward)
        done = bool(terminated) or self.step_count >= self.max_steps
        return done, {"episode": self.episode, "success": bool(info.get("is_success", False)),
                      "return": self.ret, "length": self.step_count, "held_steps": self.held}

    def joints(self) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        """(names, positions rad, velocities rad/s) of the commanded joints; None for a quadrotor."""
        if "joint_pos" not in self.obs or isinstance(self.adapter, QuadrotorAdapter):
            return None
        names = getattr(self.adapter, "joint_names", None) or self.adapter.names
        return list(names), self.obs["joint_pos"], self.obs["joint_vel"]


def _declare(node: Any) -> dict[str, Any]:
    from rcl_interfaces.msg import ParameterDescriptor

    params = {
        "env_id": ("robolearn/PandaLift-v0", "registered robolearn task"),
        "seed": (0, "episode i resets with seed + i"),
        "episodes": (0, "stop after this many episodes (0: run forever)"),
        "episode_steps": (0, "steps per episode unless the task ends it (0: the task's own limit); a long one "
                             "keeps the twin from re-placing the robot mid-experiment"),
        "step_hz": (0.0, "wall-clock stepping rate, Hz (0: the task's control rate, real time)"),
        "camera": ("", "publish image/<camera> from this named camera ('' : none)"),
        "image_size": (128, "camera frame width and height, pixels"),
        "start_delay": (0.5, "seconds to wait before the first episode (lets subscribers connect)"),
        "wait_for_subscribers": (0, "after start_delay, also wait until 'observation' has this many subscribers"),
        "wait_for_commander": (True, "after start_delay, also wait until the command topic has a publisher (the "
                                     "safety node or the policy), so no episode starts with nobody to command it"),
        "rearm_service": ("safety/rearm", "std_srvs/Trigger called at each new episode when it is up (clears a "
                                          "safety trip, not the e-stop); '' : never"),
    }
    return {k: node.declare_parameter(k, v, ParameterDescriptor(description=d, dynamic_typing=True)).value
            for k, (v, d) in params.items()}


def main(argv: list[str] | None = None) -> int:
    rclpy = require_rclpy()
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray, String
    from std_srvs.srv import Trigger

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("sim_robot")
    p = _declare(node)
    robot = SimRobot(p["env_id"], seed=int(p["seed"]), max_steps=int(p["episode_steps"]))
    adapter, log = robot.adapter, node.get_logger()
    rate = float(p["step_hz"]) or float(robot.env.control_hz)
    obs_pub = node.create_publisher(Float64MultiArray, "observation", qos_profile_sensor_data)
    js_pub = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    ep_pub = node.create_publisher(String, "episode", QoSProfile(depth=50))
    img_pub = (node.create_publisher(Image, f"image/{p['camera']}", qos_profile_sensor_data) if p["camera"] else None)
    odom = _QuadrotorState(node) if isinstance(adapter, QuadrotorAdapter) else None
    latest: dict[str, Command | None] = {"cmd": None}

    def on_command(msg: Any) -> None:
        try:
            latest["cmd"] = adapter.from_msg(msg)
        except ValueError as err:
            log.warning(f"ignored command: {err}")

    command_topics = [COMMAND_TOPICS[adapter.embodiment]]
    node.create_subscription(adapter.msg_type(), command_topics[0], on_command, QoSProfile(depth=1))
    if isinstance(adapter, ArmAdapter):
        command_topics.append("forward_position")
        node.create_subscription(
            Float64MultiArray, "forward_position",
            lambda m: on_command_forward(m, latest, node), QoSProfile(depth=1))
    state = {"started": False, "finished": False}
    rearm = node.create_client(Trigger, p["rearm_service"]) if p["rearm_service"] else None

    def rearm_safety(episode: int) -> None:
        """Clear a trip of the previous episode (logged with its reason) now that this one has started."""
        if rearm is None or not rearm.service_is_ready():
            return

        def done(future: Any) -> None:
            reply = future.result()
            if reply is not None and reply.message.startswith("re-armed"):
                log.warning(f"episode {episode - 1} tripped the safety; {reply.message}")

        rearm.call_async(Trigger.Request()).add_done_callback(done)

    def publish() -> None:
        now = clock_sec(node)
        obs_pub.publish(observation_msg(robot.obs, now, robot.episode, robot.step_count))
        joints = robot.joints()
        if joints is not None:
            js_pub.publish(joint_state_msg(*joints, now))
        if img_pub is not None:
            size = int(p["image_size"])
            img_pub.publish(image_msg(robot.env.render_camera(p["camera"], size, size), now, p["camera"]))
        if odom is not None:
            odom.publish(robot.obs, now)

    def tick() -> None:
        if state["finished"]:
            return
        if not state["started"]:
            robot.reset()
            state["started"] = True
            publish()
            return
        cmd, latest["cmd"] = latest["cmd"], None
        if cmd is not None:
            robot.apply(cmd)
        else:
            robot.held += 1
        done, info = robot.step()
        if done:
            ep_pub.publish(String(data=json.dumps(info)))
            robot.episode += 1
            if p["episodes"] and robot.episode >= p["episodes"]:
                state["finished"] = True
                ep_pub.publish(String(data=json.dumps({"done": True})))
                return
            robot.reset()
        publish()
        if done:
            rearm_safety(robot.episode)

    t0 = time.monotonic()

    def begin() -> None:
        if time.monotonic() - t0 < float(p["start_delay"]):
            return
        if node.count_subscribers("observation") < int(p["wait_for_subscribers"]):
            return
        if p["wait_for_commander"] and not any(node.count_publishers(t) for t in command_topics):
            return
        start.cancel()
        node.create_timer(1.0 / rate, tick)

    start = node.create_timer(0.05, begin)
    log.info(f"sim_robot: {p['env_id']} at {rate:g} Hz wall ({robot.env.control_hz:g} Hz sim)")
    try:
        spin_until_shutdown(node)
    finally:
        shutdown_node(node)
    return 0


def on_command_forward(msg: Any, latest: dict[str, Command | None], node: Any) -> None:
    """A forward-position command (no stamp: stamped on arrival)."""
    latest["cmd"] = Command(clock_sec(node), np.asarray(msg.data, np.float64))


class _QuadrotorState:
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


if __name__ == "__main__":
    sys.exit(main())
