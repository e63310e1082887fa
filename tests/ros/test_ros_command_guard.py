"""Only the safety layer commands the robot: the twin refuses commands that do not fit the robot (counted), holds
its own fallback while the e-stop is latched whoever publishes, and the safety node reports (and latches on) a
publisher on the robot's command topics other than itself, and refuses ``~/reset`` while one is there."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain, joint_positions  # noqa: E402

from robolearn.ros_nodes.embodiments import EMBODIMENTS  # noqa: E402
from robolearn.ros_nodes.safety import Command  # noqa: E402

LIFT = "robolearn/PandaLift-v0"
TASKS = {"arm": LIFT, "humanoid": "robolearn/G1PushRecovery-v0", "quadrotor": "robolearn/QuadHover-v0"}


@pytest.mark.parametrize("name", sorted(EMBODIMENTS))
def test_every_embodiment_bounds_refuse_bad_commands_and_admit_its_fallback(name):
    from robolearn.ros_nodes.sim_robot import SimRobot

    robot = SimRobot(TASKS[name])
    obs = robot.reset()
    guard = robot.guard
    size = guard.bounds.low.size
    good = Command(0.0, np.clip(np.zeros(size), guard.bounds.low, guard.bounds.high))
    assert guard.admit(good)
    for values, reason in ((np.full(size, np.nan), "NaN or inf"), (np.zeros(size + 1), "wrong length"),
                           (np.full(size, 1e3), "outside the joint limits")):
        assert not guard.admit(Command(0.0, values))
        assert any(k.startswith(reason) for k in guard.counts), (reason, guard.counts)
    guard.latch()
    assert not guard.admit(good) and guard.counts["e-stop latched"] == 1
    hold = guard.fallback(obs, now=0.0)
    assert hold is not None and guard.bounds.check(hold) is None, hold  # the robot accepts its own fallback
    guard.clear()
    assert guard.admit(good) and guard.accepted == 2


def test_twin_refuses_nan_wrong_length_and_out_of_limit_commands_and_holds_while_latched():
    from robolearn.ros_nodes.sim_robot import SimRobot

    robot = SimRobot(LIFT)
    obs = robot.reset()
    q0 = obs["joint_pos"].copy()
    for values in ([*q0, float("nan")], q0.tolist(), [1e3] * 8, [*q0, 2.0]):  # NaN, 7 of 8, huge, gripper 2
        assert not robot.apply(Command(0.0, np.asarray(values, np.float64)))
        robot.step()
    np.testing.assert_allclose(robot.obs["joint_pos"], q0, atol=0.02)  # no jump to qpos0, no swing
    assert sum(robot.guard.counts.values()) == 4 and robot.guard.accepted == 0, robot.guard.counts

    target = q0.copy()
    target[0] += 0.3
    robot.estop(True)
    for _ in range(20):  # a latched robot ignores a valid command from anyone and holds where it was
        assert not robot.apply(Command(0.0, np.append(target, 0.0)))
        assert robot.hold()
        robot.step()
    np.testing.assert_allclose(robot.obs["joint_pos"], q0, atol=0.02)
    robot.estop(False)
    for _ in range(20):
        assert robot.apply(Command(0.0, np.append(target, 0.0)))
        robot.step()
    assert robot.obs["joint_pos"][0] - q0[0] > 0.1



def start_graph(client, mode: str = "gate") -> list:
    """The twin and safety nodes on PandaLift in the client's context and executor (no policy)."""
    from rclpy.parameter import Parameter

    from robolearn.ros_nodes.safety_node import SafetyNode
    from robolearn.ros_nodes.sim_robot_node import SimRobotNode

    twin = SimRobotNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("step_hz", value=50.0), Parameter("episode_steps", value=100_000),
        Parameter("start_delay", value=0.0)])
    safety = SafetyNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("mode", value=mode), Parameter("watch_hz", value=10.0)])
    for node in (twin, safety):
        client.executor.add_node(node)
    return [twin, safety]


class Rogue:
    """A node in its own participant (another context) publishing on the robot's command topics."""

    def __init__(self, domain: int, name: str):
        import rclpy
        from rclpy.context import Context
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.forward = self.node.create_publisher(Float64MultiArray, "forward_position", 1)
        self.trajectory = self.node.create_publisher(JointTrajectory, "joint_trajectory", 1)

    def publish(self, positions: list[float], stamp) -> None:
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        self.forward.publish(Float64MultiArray(data=positions))
        names = [f"joint{i}" for i in range(1, 8)] + ["gripper"]
        msg = JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(positions=positions)])
        msg.header.stamp = stamp
        self.trajectory.publish(msg)

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()


def watch(client) -> dict:
    """The latest joint positions (``q``, rad), ``safety/status`` and ``sim_robot/status``, kept up to date."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    state: dict = {"q": None, "safety": {}, "twin": {}}
    node = client.node
    node.create_subscription(JointState, "joint_states", lambda m: state.update(q=joint_positions(m)),
                             qos_profile_sensor_data)
    node.create_subscription(String, "safety/status", lambda m: state.update(safety=json.loads(m.data)), 10)
    node.create_subscription(String, "sim_robot/status", lambda m: state.update(twin=json.loads(m.data)), 10)
    return state


@pytest.mark.slow
def test_rogue_publisher_with_estop_latched_moves_nothing_trips_and_blocks_reset():
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from robolearn.ros_nodes.convert import sec_to_stamp
    from robolearn.ros_nodes.safety_params import state_qos

    domain = fresh_domain()
    client = Client(domain)
    nodes = start_graph(client)
    state = watch(client)
    rogue = None
    try:
        assert client.spin_until(lambda: state["q"] is not None and state["safety"].get("fallback")
                                 and state["twin"], 30.0), state
        assert client.call(Trigger, "/safety/estop").success
        assert client.spin_until(lambda: state["twin"].get("estopped"), 3.0), state["twin"]
        q0 = state["q"].copy()
        # an impostor that copies the safety node's own name, in another process's participant
        rogue = Rogue(domain, "safety")
        target = [*(q0 + np.r_[0.5, np.zeros(6)]).tolist(), 0.0]
        for _ in range(75):  # 1.5 s at 50 Hz: unlatched, the arm moved 0.5 rad in this time
            rogue.publish(target, sec_to_stamp(client.now()))
            client.spin_for(0.02)
        assert np.abs(state["q"] - q0).max() < 0.01, state["q"] - q0
        assert state["twin"]["refused"].get("e-stop latched", 0) > 50, state["twin"]
        assert client.spin_until(lambda: any(i.startswith("/safety on /joint_trajectory")
                                             for i in state["safety"].get("intruders", [])), 3.0), state["safety"]
        assert state["safety"]["counts"].get("unknown publisher", 0) >= 2 and state["safety"]["estopped"]

        reply = client.call(Trigger, "/safety/reset")
        assert not reply.success and "/safety on /forward_position" in reply.message, reply.message
        assert client.spin_until(lambda: state["safety"]["counts"].get("reset refused", 0) >= 1, 2.0)
        rogue.close()
        # a forged "cleared" safety/state does not unlatch the twin, and is an intruder on the safety node's topic
        rogue = Rogue(domain, "forger")
        forged = rogue.node.create_publisher(String, "safety/state", state_qos())
        for _ in range(10):
            forged.publish(String(data=json.dumps({"estopped": False, "epoch": 99, "cleared": "reset"})))
            client.spin_for(0.05)
        assert client.spin_until(lambda: state["twin"]["refused"].get("safety/state from another node", 0) >= 1,
                                 3.0), state["twin"]
        assert state["twin"]["estopped"] and np.abs(state["q"] - q0).max() < 0.01
        assert client.spin_until(lambda: any(i.startswith("/forger on /safety/state")
                                             for i in state["safety"].get("intruders", [])), 3.0), state["safety"]
        rogue.close()
        rogue = None
        assert client.spin_until(lambda: not state["safety"].get("intruders"), 10.0), state["safety"]
        assert client.call(Trigger, "/safety/reset").success
        assert client.spin_until(lambda: not state["twin"].get("estopped", True), 3.0), state["twin"]
    finally:
        if rogue is not None:
            rogue.close()
        for n in nodes:
            client.executor.remove_node(n)
            n.destroy_node()
        client.close()


@pytest.mark.slow
def test_twin_node_refuses_and_counts_nan_wrong_length_names_and_out_of_limit_commands():
    from rclpy.parameter import Parameter
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from robolearn.ros_nodes.convert import sec_to_stamp
    from robolearn.ros_nodes.sim_robot_node import SimRobotNode

    domain = fresh_domain()
    client = Client(domain)
    twin = SimRobotNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("step_hz", value=50.0), Parameter("episode_steps", value=100_000),
        Parameter("start_delay", value=0.0)])
    client.executor.add_node(twin)
    state = watch(client)
    rogue = Rogue(domain, "rogue")  # no safety node here: the twin alone stands between it and the arm
    names = [f"joint{i}" for i in range(1, 8)] + ["gripper"]
    try:
        assert client.spin_until(lambda: state["q"] is not None, 30.0)
        q0 = state["q"].copy()
        nan, huge = [*q0.tolist(), float("nan")], [1e3] * 8
        for _ in range(10):
            rogue.forward.publish(Float64MultiArray(data=nan))
            client.spin_for(0.02)
            rogue.forward.publish(Float64MultiArray(data=q0.tolist()))  # 7 values for 8
            client.spin_for(0.02)
            rogue.publish(huge, sec_to_stamp(client.now()))
            client.spin_for(0.02)
            unknown = [*names[:7], "joint8"]  # an unknown joint name
            msg = JointTrajectory(joint_names=unknown, points=[JointTrajectoryPoint(positions=[*q0, 0.0])])
            rogue.trajectory.publish(msg)
            client.spin_for(0.02)
        client.spin_for(0.6)
        refused = state["twin"].get("refused", {})
        for reason in ("NaN or inf", "wrong length 7, expected 8", "outside the joint limits", "unknown joint"):
            assert refused.get(reason, 0) >= 5, (reason, refused)
        assert state["twin"]["accepted"] == 0 and np.abs(state["q"] - q0).max() < 0.01, (state, q0)
    finally:
        rogue.close()
        client.executor.remove_node(twin)
        twin.destroy_node()
        client.close()


@pytest.mark.slow
def test_monitor_allows_the_inline_policy_and_reports_any_other_publisher():
    domain = fresh_domain()
    client = Client(domain)
    nodes = start_graph(client, mode="monitor")
    safety = nodes[1]
    policy = rogue = None
    try:
        policy = Rogue(domain, "policy")  # the inline-filtering policy node's name: allowed in monitor mode
        client.spin_for(1.0)
        assert safety.check_publishers() == [] and not safety.filter.estopped
        rogue = Rogue(domain, "teleop_bridge")
        assert client.spin_until(lambda: bool(safety.intruders), 5.0)
        assert all(i.startswith("/teleop_bridge on") for i in safety.intruders), safety.intruders
        assert safety.filter.estopped and safety.filter.counts["unknown publisher"] == 2
    finally:
        for r in (policy, rogue):
            if r is not None:
                r.close()
        for n in nodes:
            client.executor.remove_node(n)
            n.destroy_node()
        client.close()
