"""``sim_robot_node``: a MuJoCo task exposed as a robot, the stand-in for hardware.

It steps the task at ``step_hz`` (wall clock; the task's own control period, e.g. 0.05 s, is the sim
time of one step, so ``step_hz`` above the task's rate runs faster than real time) with the latest
command it received, and publishes what a robot would:

* ``joint_states`` (``sensor_msgs/JointState``, reliable, volatile, keep last 10: ``joint_state_broadcaster``'s
  QoS): arm/humanoid joints, rad and rad/s, and the arm's ``gripper`` (closure 0..1);
* ``observation`` (``std_msgs/Float64MultiArray``, sensor-data QoS): the full observation, including the
  simulator's privileged object state (layout in :mod:`robolearn.ros_nodes.convert`);
* ``odom`` (``nav_msgs/Odometry``) and ``imu`` (``sensor_msgs/Imu``) for the quadrotor;
* ``image/<camera>`` (``sensor_msgs/Image``, rgb8) for each of ``camera`` (comma-separated names), or with
  ``image_format`` jpeg / png ``image/<camera>/compressed`` (``sensor_msgs/CompressedImage``), published before
  the observation of the same step and with its stamp; the frame is the task's ``pixels/<camera>`` observation
  when the task renders it (``task: {"pixels": ...}``, with its visual randomization), else rendered at
  ``image_size``;
* ``episode`` (``std_msgs/String``, reliable): one JSON line per finished episode
  (``episode``, ``success``, ``return``, ``length``), and ``{"done": true}`` after ``episodes``.

It consumes the command message of its embodiment (:mod:`robolearn.ros_nodes.embodiments`) on the
embodiment's command topic (reliable, keep-last 1; the arm's ``JointTrajectory`` as ``joint_trajectory_controller``
takes it: any order and subset of the joints, several points interpolated over ``time_from_start``, simulated
time), and the embodiment's further inputs (the arm's ``forward_position``). The physics is
:class:`~robolearn.ros_nodes.sim_robot.SimRobot`, a :class:`~robolearn.core.protocols.Robot`. Until the first
command arrives, and after a trajectory's last point, the joint servos hold their last targets, as a real arm does.

Like a real robot's driver it trusts no sender (the contract in ``ros_nodes/README.md``): each command
passes the :class:`~robolearn.ros_nodes.command_guard.CommandGuard` on arrival (length, names, finite
values, the robot's joint ranges) or is refused and counted. It follows the e-stop itself: ``estop``
(``std_msgs/Bool``, true) latches it, ``safety/state`` (the safety node's latch, transient local) latches
and clears it; while latched it refuses every command, from any publisher, and holds the embodiment's
fallback. ``sim_robot/status`` (``std_msgs/String`` JSON, 2 Hz): ``accepted``, ``refused`` by reason,
``estopped``.

Each new episode puts the robot back in a safe state, as an operator re-placing it would; the twin then
calls ``rearm_service`` (the safety node's ``~/rearm``, if it is up), so that a state-limit trip in one
episode (a quadrotor tilted past its limit) does not fly every later episode on the fallback. It never
clears an e-stop.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from robolearn.ros_nodes.convert import clock_sec, image_msg, joint_state_msg, observation_msg
from robolearn.ros_nodes.embodiments.base import Embodiment
from robolearn.ros_nodes.images import COMPRESSED_FORMATS, compressed_image_msg
from robolearn.ros_nodes.rosenv import declare_parameters, require_rclpy, run_node
from robolearn.ros_nodes.safety import Command
from robolearn.ros_nodes.safety_params import state_qos
from robolearn.ros_nodes.sim_robot import SimRobot, task_settings

require_rclpy()
from rclpy.node import Node  # noqa: E402
from rclpy.qos import (  # noqa: E402
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CompressedImage, Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

__all__ = ["JOINT_STATES_QOS", "PARAMETERS", "SimRobot", "SimRobotNode", "main"]

JOINT_STATES_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
"""``joint_states`` as ros2_control's ``joint_state_broadcaster`` publishes it (the rclcpp ``SystemDefaultsQoS``
it uses: reliable, volatile, keep last 10). Both reliable (a default subscriber) and best-effort (sensor-data)
subscribers match it."""

PARAMETERS = {
    "env_id": ("robolearn/PandaLift-v0", "registered robolearn task"),
    "seed": (0, "episode i resets with seed + i"),
    "task": ("{}", "task settings as a JSON object of gymnasium.make keywords, e.g. {\"push_force\": 120.0}"),
    "episodes": (0, "stop after this many episodes (0: run forever)"),
    "episode_steps": (0, "steps per episode unless the task ends it (0: the task's own limit); a long one "
                         "keeps the twin from re-placing the robot mid-experiment"),
    "step_hz": (0.0, "wall-clock stepping rate, Hz (0: the task's control rate, real time)"),
    "camera": ("", "publish image/<camera> for these named cameras, comma-separated ('' : none)"),
    "image_size": (128, "camera frame width and height, pixels (a task that renders pixels/<camera> sets its own)"),
    "image_format": ("raw", "raw (sensor_msgs/Image rgb8 on image/<camera>), jpeg or png (CompressedImage on "
                            "image/<camera>/compressed)"),
    "jpeg_quality": (90, "JPEG quality 1-100 (image_format jpeg)"),
    "start_delay": (0.5, "seconds to wait before the first episode (lets subscribers connect)"),
    "wait_for_subscribers": (0, "after start_delay, also wait until 'observation' has this many subscribers"),
    "wait_for_commander": (True, "after start_delay, also wait until the command topic has a publisher (the "
                                 "safety node or the policy), so no episode starts with nobody to command it"),
    "safety_node": ("safety", "name of the safety node (in this namespace) whose safety/state may clear the e-stop"),
    "rearm_service": ("safety/rearm", "std_srvs/Trigger called at each new episode when it is up (clears a "
                                      "safety trip, not the e-stop); '' : never"),
}
"""The node's parameters: name -> (default, description)."""


class SimRobotNode(Node):
    """The twin node; see the module docstring.

    Args:
        embodiment: the robot's embodiment (None: the task's, from ``EMBODIMENTS``).
        **kwargs: passed to ``Node`` (``context``, ``parameter_overrides``...).
    """

    def __init__(self, embodiment: Embodiment | None = None, **kwargs: Any) -> None:
        super().__init__("sim_robot", **kwargs)
        p = self.p = declare_parameters(self, PARAMETERS)
        self.robot = SimRobot(p["env_id"], seed=int(p["seed"]), env_kwargs=task_settings(p["task"]),
                              max_steps=int(p["episode_steps"]),
                              embodiment=embodiment, log=lambda m: self.get_logger().warning(m))
        emb, adapter = self.robot.embodiment, self.robot.adapter
        self.rate = float(p["step_hz"]) or float(self.robot.env.control_hz)
        self.obs_pub = self.create_publisher(Float64MultiArray, "observation", qos_profile_sensor_data)
        self.js_pub = self.create_publisher(JointState, "joint_states", JOINT_STATES_QOS)
        self.ep_pub = self.create_publisher(String, "episode", QoSProfile(depth=50))
        self.img_pubs = self._image_publishers(p["camera"], p["image_format"])
        self.extra_publish: Callable[[dict, float], None] | None = emb.twin_outputs(self)
        self.command_topics = [emb.command_topic]
        self.create_subscription(adapter.msg_type(), emb.command_topic, self.on_command, QoSProfile(depth=1))
        for topic, (msg_type, to_command) in emb.twin_inputs(adapter).items():
            self.command_topics.append(topic)
            self.create_subscription(msg_type, topic, lambda m, f=to_command: self.take(f(m, clock_sec(self))),
                                     QoSProfile(depth=1))
        self.status_pub = self.create_publisher(String, "sim_robot/status", QoSProfile(depth=10))
        self._topic_latch_epoch: int | None = None
        """The safety node's ``epoch`` when ``estop`` latched this twin (a later reset clears it); None: not."""
        self._epoch = -1
        self.create_subscription(String, "safety/state", self.on_safety_state, state_qos())
        self.create_subscription(Bool, "estop", self.on_estop, QoSProfile(depth=10))
        self.create_timer(0.5, self.publish_status)
        self.started = self.finished = False
        self.rearm = self.create_client(Trigger, p["rearm_service"]) if p["rearm_service"] else None
        self._t0 = time.monotonic()
        self._waits_logged: set[str] = set()
        """What the twin has logged it waits for (each logged once)."""
        self._start = self.create_timer(0.05, self.begin)
        self.get_logger().info(f"sim_robot: {p['env_id']} at {self.rate:g} Hz wall "
                               f"({self.robot.env.control_hz:g} Hz sim)")

    def _image_publishers(self, cameras: str, fmt: str) -> dict[str, Any]:
        """A publisher per named camera: Image on ``image/<camera>``, or CompressedImage on its ``/compressed``."""
        if fmt not in ("raw", *COMPRESSED_FORMATS):
            raise ValueError(f"image_format must be raw, jpeg or png, got {fmt!r}")
        names = [c.strip() for c in cameras.split(",") if c.strip()]
        model = self.robot.env.model
        known = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in names if c not in known]
        if unknown:
            raise ValueError(f"camera {unknown} not in {self.p['env_id']}; it has {known}")
        if fmt == "raw":
            return {c: self.create_publisher(Image, f"image/{c}", qos_profile_sensor_data) for c in names}
        return {c: self.create_publisher(CompressedImage, f"image/{c}/compressed", qos_profile_sensor_data)
                for c in names}

    def take(self, cmd: Command) -> None:
        """Apply ``cmd`` from the next step on (a newer one replaces it) if the guard admits it."""
        self.robot.follow([(0.0, cmd)])

    def on_command(self, msg: Any) -> None:
        """A command on the embodiment's topic: its trajectory replaces the current one from now on (a
        malformed one, e.g. an unknown joint name, is refused and counted by reason)."""
        self.robot.receive(msg)

    def on_estop(self, msg: Any) -> None:
        """``estop`` true: latch at once (the safety node latches too; its reset clears both)."""
        if msg.data:
            self._topic_latch_epoch = self._epoch
            self.robot.estop(True)

    def on_safety_state(self, msg: Any, info: Any) -> None:
        """The safety node's latch (``{"estopped", "epoch", "cleared"}``): follow it, except that an ``estop``
        topic latch holds until a reset newer than it, and that only the safety node's own message (by its
        publisher's GID in the graph) clears it: a clear from any other publisher is refused and counted."""
        data = json.loads(msg.data)
        if not data.get("estopped") and self.robot.guard.estopped and not self.from_safety_node(info):
            self.robot.guard.refuse("safety/state from another node")
            return
        self._epoch = int(data.get("epoch", 0))
        if data.get("estopped"):
            self.robot.estop(True)
        elif self._topic_latch_epoch is None or self._epoch > self._topic_latch_epoch:
            self._topic_latch_epoch = None
            self.robot.estop(False)

    def from_safety_node(self, info: Any) -> bool:
        """Whether a ``safety/state`` message (its ``MessageInfo``) was published by the safety node."""
        gid = bytes((info or {}).get("publisher_gid", {}).get("data", b""))
        name = f"{self.get_namespace().rstrip('/')}/{self.p['safety_node']}"
        return any(bytes(p.endpoint_gid) == gid and f"{p.node_namespace.rstrip('/')}/{p.node_name}" == name
                   for p in self.get_publishers_info_by_topic(self.resolve_topic_name("safety/state")))

    def publish_status(self) -> None:
        """``sim_robot/status``: commands accepted, refused by reason, the e-stop latch."""
        self.status_pub.publish(String(data=json.dumps(self.robot.guard.summary())))

    def begin(self) -> None:
        """Start stepping once ``start_delay`` has passed and the awaited subscribers and commander are there."""
        if time.monotonic() - self._t0 < float(self.p["start_delay"]):
            return
        want = int(self.p["wait_for_subscribers"])
        if self.count_subscribers("observation") < want:
            self.log_waiting(f"{want} subscriber(s) on 'observation' (wait_for_subscribers)")
            return
        if self.p["wait_for_commander"] and not any(self.count_publishers(t) for t in self.command_topics):
            self.log_waiting(f"a publisher on one of {self.command_topics} (wait_for_commander)")
            return
        self._start.cancel()
        if self._waits_logged:
            self.get_logger().info("sim_robot: starting")
        self.create_timer(1.0 / self.rate, self.tick)

    def log_waiting(self, what: str) -> None:
        """Log what the twin waits for before it starts stepping, once per thing waited for."""
        if what not in self._waits_logged:
            self._waits_logged.add(what)
            self.get_logger().info(f"sim_robot: waiting for {what} before the first episode")

    def tick(self) -> None:
        """One control step with the latest command (the servos hold their targets without one)."""
        robot = self.robot
        if self.finished:
            return
        if not self.started:
            robot.reset()
            self.started = True
            self.publish()
            return
        if robot.guard.estopped:
            robot.hold()
            robot.held += 1
        elif not robot.drive():
            robot.held += 1
        done, info = robot.step()
        if done:
            self.ep_pub.publish(String(data=json.dumps(info)))
            robot.episode += 1
            if self.p["episodes"] and robot.episode >= self.p["episodes"]:
                self.finished = True
                self.ep_pub.publish(String(data=json.dumps({"done": True})))
                return
            robot.reset()
        self.publish()
        if done:
            self.rearm_safety(robot.episode)

    def publish(self) -> None:
        """The camera frames, then the observation, joint states and the embodiment's extra state, stamped now
        (frames first, so that a policy pairing them with the observation finds them there)."""
        robot, now = self.robot, clock_sec(self)
        self.publish_images(now)
        self.obs_pub.publish(observation_msg(robot.obs, now, robot.episode, robot.step_count))
        joints = robot.joints()
        if joints is not None:
            self.js_pub.publish(joint_state_msg(*joints, now))
        if self.extra_publish is not None:
            self.extra_publish(robot.obs, now)

    def publish_images(self, now: float) -> None:
        """Each camera's frame (the task's ``pixels/<camera>`` when it renders one), stamped ``now``."""
        size, fmt = int(self.p["image_size"]), self.p["image_format"]
        for camera, pub in self.img_pubs.items():
            frame = self.robot.obs.get(f"pixels/{camera}")
            if frame is None:
                frame = self.robot.env.render_camera(camera, size, size)
            pub.publish(image_msg(frame, now, camera) if fmt == "raw" else
                        compressed_image_msg(frame, now, camera, fmt, int(self.p["jpeg_quality"])))

    def rearm_safety(self, episode: int) -> None:
        """Clear a trip of the previous episode (logged with its reason) now that this one has started."""
        if self.rearm is None or not self.rearm.service_is_ready():
            return

        def done(future: Any) -> None:
            reply = future.result()
            if reply is not None and reply.message.startswith("re-armed"):
                self.get_logger().warning(f"episode {episode - 1} tripped the safety; {reply.message}")

        self.rearm.call_async(Trigger.Request()).add_done_callback(done)

    def close(self) -> None:
        """Nothing to save at shutdown."""


def main(argv: list[str] | None = None) -> int:
    return run_node(SimRobotNode, argv)


if __name__ == "__main__":
    sys.exit(main())
