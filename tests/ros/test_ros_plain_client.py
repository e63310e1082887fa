"""A client written from the topic table in ``ros_nodes/README.md`` alone drives the twin.

:class:`PlainClient` uses only rclpy and the message packages (no robolearn import): it subscribes to
``joint_states`` with rclpy's default QoS (reliable), and commands the arm as a ros2_control
``joint_trajectory_controller`` client would: a subset of the joints, in its own order, two points over
``time_from_start``. Only starting the twin uses the project's test helpers.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain  # noqa: E402

LIFT = "robolearn/PandaLift-v0"


class PlainClient:
    """rclpy only: ``joint_states`` in (default QoS), ``joint_trajectory`` out (default QoS), own context."""

    def __init__(self, domain_id: int):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("plain_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.joints: dict[str, float] = {}
        """The latest ``joint_states``: name -> position (rad; ``gripper``: closure 0..1)."""
        self.received = 0
        self.node.create_subscription(JointState, "joint_states", self.on_joints, 10)  # reliable, keep last 10
        self.trajectory = self.node.create_publisher(JointTrajectory, "joint_trajectory", 10)

    def on_joints(self, msg) -> None:
        self.joints = dict(zip(msg.name, msg.position, strict=True))
        self.received += 1

    def send(self, names: list[str], points: list[tuple[float, list[float]]]) -> None:
        """A ``JointTrajectory``: ``names`` and (time_from_start s, positions) points."""
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        msg = JointTrajectory(joint_names=names)
        for t, positions in points:
            duration = Duration(sec=int(t), nanosec=int(round((t % 1.0) * 1e9)))
            msg.points.append(JointTrajectoryPoint(positions=positions, time_from_start=duration))
        self.trajectory.publish(msg)

    def spin_until(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def test_plain_rclpy_client_commands_a_subset_two_point_trajectory():
    from rclpy.parameter import Parameter

    from robolearn.ros_nodes.sim_robot_node import SimRobotNode

    domain = fresh_domain()
    host = Client(domain)  # the twin's context and executor (project helpers), spun in a thread
    twin = SimRobotNode(context=host.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("step_hz", value=50.0), Parameter("episode_steps", value=100_000),
        Parameter("start_delay", value=0.0)])
    host.executor.add_node(twin)
    spinner = threading.Thread(target=host.executor.spin, daemon=True)
    spinner.start()
    client = PlainClient(domain)
    try:
        assert client.spin_until(lambda: client.received >= 3, 30.0), "no joint_states with a default QoS"
        names = [f"joint{i}" for i in range(1, 8)]
        assert set(client.joints) == {*names, "gripper"} and 0.0 <= client.joints["gripper"] <= 1.0
        q0 = dict(client.joints)
        # joint4 then joint1 (not the robot's order), 2 points: 0.5 s and 1 s of the twin's (simulated) time
        mid, goal = {"joint4": q0["joint4"] + 0.15, "joint1": q0["joint1"] + 0.2}, \
            {"joint4": q0["joint4"] + 0.3, "joint1": q0["joint1"] + 0.4}
        client.send(["joint4", "joint1"], [(0.5, [mid["joint4"], mid["joint1"]]),
                                            (1.0, [goal["joint4"], goal["joint1"]])])
        # on its way it passes the first point's region before the second (interpolated, not a jump)
        assert client.spin_until(lambda: client.joints["joint1"] - q0["joint1"] > 0.1, 10.0), client.joints
        assert client.joints["joint1"] - q0["joint1"] < 0.35, "jumped to the last point"
        assert client.spin_until(lambda: all(abs(client.joints[j] - goal[j]) < 0.03 for j in goal), 10.0), \
            (client.joints, goal)
        held = [j for j in names if j not in goal] + ["gripper"]
        assert max(abs(client.joints[j] - q0[j]) for j in held) < 0.03, {j: client.joints[j] - q0[j] for j in held}
        assert twin.robot.guard.accepted == 1 and not twin.robot.guard.counts, twin.robot.guard.summary()
    finally:
        client.close()
        host.executor.shutdown()
        spinner.join(timeout=5.0)
        twin.destroy_node()
        host.close()


def test_arm_twin_interpolates_a_subset_trajectory_and_counts_malformed_ones():
    """Without ROS messages on the wire: :meth:`SimRobot.receive` as the twin node calls it."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from robolearn.ros_nodes.sim_robot import SimRobot

    robot = SimRobot(LIFT)
    q0 = robot.reset()["joint_pos"].copy()
    msg = JointTrajectory(joint_names=["joint4", "joint1"], points=[
        JointTrajectoryPoint(positions=[q0[3] + 0.2, q0[0] + 0.2], time_from_start=Duration(nanosec=500_000_000)),
        JointTrajectoryPoint(positions=[q0[3] + 0.3, q0[0] + 0.4], time_from_start=Duration(sec=1))])
    assert robot.receive(msg), robot.guard.counts
    targets = []
    for _ in range(30):  # 20 Hz: 1.5 s
        robot.drive()
        robot.step()
        targets.append(robot.target.values - np.append(q0, 0.0))
    np.testing.assert_allclose(targets[4][[0, 3]], [0.1, 0.1], atol=1e-6)  # 0.25 s: half-way to the first point
    np.testing.assert_allclose(targets[14][[0, 3]], [0.3, 0.25], atol=1e-6)  # 0.75 s: half-way between the points
    np.testing.assert_allclose(targets[-1], [0.4, 0, 0, 0.3, 0, 0, 0, 0], atol=1e-6)  # the last point, then held
    np.testing.assert_allclose(robot.obs["joint_pos"] - q0, [0.4, 0, 0, 0.3, 0, 0, 0], atol=0.02)
    bad = {"unknown joint": (["joint1", "joint9"], [0.0, 0.0]), "duplicate joint": (["joint1", "joint1"], [0.0, 0.0]),
           "point/name length mismatch": (["joint1"], [0.0, 0.0]), "NaN or inf": (["joint1"], [float("nan")])}
    for names, positions in bad.values():
        assert not robot.receive(JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(positions=positions)]))
    assert dict(robot.guard.counts) == dict.fromkeys(bad, 1) and robot.guard.accepted == 1


def test_humanoid_twin_takes_any_subset_of_joints_by_name():
    """``joint_command`` as a ``JointState`` command interface: named joints in any order, the others hold."""
    from sensor_msgs.msg import JointState

    from robolearn.ros_nodes.sim_robot import SimRobot

    robot = SimRobot("robolearn/G1PushRecovery-v0")
    q0 = robot.reset()["joint_pos"].copy()
    names = robot.adapter.names
    assert robot.receive(JointState(name=[names[3], names[0]], position=[q0[3] + 0.1, q0[0] + 0.05],
                                    velocity=[50.0, 60.0]))  # kp for the two, kd (effort) left as it was
    assert robot.drive()
    expected = q0.copy()
    expected[[3, 0]] += [0.1, 0.05]
    np.testing.assert_allclose(robot.target.values, expected, atol=1e-6)
    kp = robot.adapter.kp.copy()
    kp[[3, 0]] = [50.0, 60.0]
    np.testing.assert_allclose(robot.target.kp, kp)
    np.testing.assert_allclose(robot.target.kd, robot.adapter.kd)
    bad = {"unknown joint": ([names[0], "x"], [0.0, 0.0], []), "duplicate joint": ([names[0]] * 2, [0.0, 0.0], []),
           "position/name length mismatch": ([names[0]], [0.0, 0.0], []),
           "gain/name length mismatch": ([names[0]], [0.0], [1.0, 2.0])}
    for name, position, velocity in bad.values():
        assert not robot.receive(JointState(name=name, position=position, velocity=velocity))
    assert dict(robot.guard.counts) == dict.fromkeys(bad, 1)
