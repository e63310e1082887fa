"""The watchdog holds: its thread sends the fallback as the last accepted command turns ``watchdog_timeout`` old,
not a tick or an executor turn later (stamps of the safety node's own messages, so the test's scheduling does
not count)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain  # noqa: E402

LIFT = "robolearn/PandaLift-v0"
WATCHDOG = 0.1
TICK_HZ = 20.0  # a slow tick: a fallback on the tick grid would come up to 50 ms late


@pytest.mark.slow
def test_fallback_follows_the_last_command_by_the_timeout_not_by_the_tick():
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from robolearn.ros_nodes.convert import sec_to_stamp, stamp_to_sec
    from robolearn.ros_nodes.safety_node import SafetyNode

    client = Client(fresh_domain())
    safety = SafetyNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("tick_hz", value=TICK_HZ),
        Parameter("limits.watchdog_timeout", value=WATCHDOG)])
    client.executor.add_node(safety)
    node = client.node
    sent: list[tuple[float, np.ndarray]] = []
    node.create_subscription(JointTrajectory, "joint_trajectory",
                             lambda m: sent.append((stamp_to_sec(m.header.stamp), np.array(m.points[0].positions))),
                             100)
    joints = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    inject = node.create_publisher(JointTrajectory, "policy/joint_trajectory", 10)
    names = [f"joint{i}" for i in range(1, 8)]
    q = np.array([0.0, -0.5, 0.0, -2.0, 0.0, 1.5, 0.8])
    try:
        late = []
        for _ in range(5):
            for _ in range(10):  # commands at 50 Hz, then silence
                joints.publish(JointState(name=names, position=q.tolist()))
                msg = JointTrajectory(joint_names=[*names, "gripper"],
                                      points=[JointTrajectoryPoint(positions=[*q.tolist(), 0.0])])
                last = client.now()
                msg.header.stamp = sec_to_stamp(last)
                inject.publish(msg)
                client.spin_for(0.02)
            assert not safety.filter.fallback_active
            sent.clear()
            client.spin_for(WATCHDOG + 0.1)
            assert safety.filter.fallback_active
            # a forwarded command keeps the policy's stamp; the fallback is stamped when the safety node sends it
            late.append(min(t for t, _ in sent if t > last + 1e-6) - last)
        assert max(late) <= WATCHDOG + 0.01, late
    finally:
        client.executor.remove_node(safety)
        safety.destroy_node()
        client.close()
