"""Embodiments are plug-ins: every registered one is complete, and a toy one defined in one file
(``toy_embodiment.py``), registered in a test-local copy of EMBODIMENTS, runs end to end over ROS: the twin
applies its commands, the safety node applies its check and its fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain, joint_positions  # noqa: E402
from toy_embodiment import JOINTS, TOY_STEP, Toy  # noqa: E402

from robolearn.ros_nodes.embodiments import EMBODIMENTS, embodiment_for  # noqa: E402
from robolearn.ros_nodes.safety import SafetyFilter  # noqa: E402

LIFT = "robolearn/PandaLift-v0"
TASKS = {"arm": LIFT, "humanoid": "robolearn/G1PushRecovery-v0", "quadrotor": "robolearn/QuadHover-v0"}


@pytest.mark.parametrize("name", sorted(EMBODIMENTS))
def test_every_embodiment_builds_its_adapter_limits_and_fallback(name):
    emb = EMBODIMENTS[name]
    assert emb.name == name and embodiment_for(TASKS[name]) is emb
    adapter = emb.make_adapter(TASKS[name])
    cfg = emb.default_safety(TASKS[name], adapter)
    assert cfg.embodiment == name and cfg.size == len(adapter.names)
    f = SafetyFilter(cfg, emb.safety_checks(cfg, adapter))
    f.update_state(joint_pos=np.zeros(len(adapter.joint_names)), position=np.array([0.0, 0.0, 1.0]),
                   quat=np.array([1.0, 0.0, 0.0, 0.0]), velocity=np.zeros(3))
    fallback = f.tick(now=1.0)
    assert fallback is not None and fallback.values.shape == (cfg.size,) and np.isfinite(fallback.values).all()
    assert adapter.from_msg(adapter.to_msg(fallback)).values.shape == (cfg.size,)


def start_twin_and_safety(client: Client, embodiment) -> list:
    """The real twin and safety nodes for ``embodiment`` on PandaLift, in the client's context and executor."""
    from rclpy.parameter import Parameter

    from robolearn.ros_nodes.safety_node import SafetyNode
    from robolearn.ros_nodes.sim_robot_node import SimRobotNode

    twin = SimRobotNode(embodiment=embodiment, context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("step_hz", value=50.0), Parameter("episode_steps", value=100_000),
        Parameter("start_delay", value=0.0)])
    safety = SafetyNode(embodiment=embodiment, context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("limits.watchdog_timeout", value=0.1)])
    for node in (twin, safety):
        client.executor.add_node(node)
    return [twin, safety]


@pytest.mark.slow
def test_a_toy_embodiment_in_one_file_runs_twin_safety_check_and_fallback():
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from robolearn.ros_nodes.convert import sec_to_stamp, stamp_to_sec

    embodiments = {**EMBODIMENTS, "toy": Toy()}  # the one line a new embodiment adds
    client = Client(fresh_domain())
    nodes = start_twin_and_safety(client, embodiments["toy"])
    node = client.node
    state: dict = {"q": None, "status": {}, "sent": []}
    node.create_subscription(JointState, "joint_states", lambda m: state.update(q=joint_positions(m)),
                             qos_profile_sensor_data)
    node.create_subscription(String, "safety/status", lambda m: state.update(status=json.loads(m.data)), 10)
    node.create_subscription(JointState, "toy_command",
                             lambda m: state["sent"].append((stamp_to_sec(m.header.stamp), np.array(m.position))), 50)
    inject = node.create_publisher(JointState, "policy/toy_command", 10)

    def counts() -> dict:
        return state["status"].get("counts", {})

    try:
        # nothing commands the robot yet: the toy's fallback holds it, through the twin
        assert client.spin_until(lambda: state["q"] is not None and counts().get("fallback", 0) >= 1
                                 and len(state["sent"]) > 5, 30.0), (state["status"], len(state["sent"]))
        q0 = state["q"].copy()
        np.testing.assert_allclose(state["sent"][-1][1], q0, atol=0.02)

        # a far target: the toy's own check clips every command to TOY_STEP; the twin follows
        state["sent"].clear()
        for _ in range(25):
            msg = JointState(name=list(JOINTS), position=(state["q"] + np.r_[0.5, np.zeros(6)]).tolist())
            msg.header.stamp = sec_to_stamp(client.now())
            inject.publish(msg)
            client.spin_for(0.02)
        assert client.spin_until(lambda: counts().get("clip:toy_step", 0) >= 5, 2.0), counts()
        assert not state["status"]["fallback"]
        leads = [abs(values[0] - q0[0]) for _, values in state["sent"]]
        assert max(leads) > 0.05, leads  # the joint moved, step by step
        assert state["q"][0] - q0[0] > 0.05, (state["q"], q0)
        steps = np.diff([values[0] for _, values in state["sent"]])
        assert np.abs(steps).max() <= TOY_STEP + 0.03, steps

        # the commands stop: the watchdog switches to the toy's fallback again
        before = counts()["fallback"]
        assert client.spin_until(lambda: counts().get("fallback", 0) > before and state["status"]["fallback"], 3.0)
    finally:
        for n in nodes:
            client.executor.remove_node(n)
            n.destroy_node()
        client.close()
