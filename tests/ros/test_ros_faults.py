"""Faults over ROS: a killed policy, bad commands, the e-stop latch, a restarted policy."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain, joint_positions  # noqa: E402

from robolearn.ros_nodes.launcher import DeployConfig, Graph  # noqa: E402

LIFT = "robolearn/PandaLift-v0"
WATCHDOG = 0.1


@pytest.mark.slow
def test_faults_fallback_rejections_estop_and_restart(tmp_path):
    import json

    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from robolearn.ros_nodes.convert import sec_to_stamp, stamp_to_sec

    domain = fresh_domain()
    # One long episode that nothing ends: the zero policy holds the arm still (the expert would lift the cube, and
    # the task's success would end the episode and re-place the arm mid-test: a CI run saw a 0.81 rad "lead").
    cfg = DeployConfig(env_id=LIFT, domain_id=domain, log_dir=str(tmp_path),
                       params={"sim_robot": {"episodes": 0, "step_hz": 50.0, "episode_steps": 100_000},
                               "policy": {"policy": "zero", "control_hz": 50.0},
                               "safety": {"limits.watchdog_timeout": WATCHDOG}})
    client = Client(domain)
    graph = Graph(cfg)
    # (header stamp, positions): when the safety node (or the policy) made each command
    received: list[tuple[float, list[float]]] = []
    state: dict = {"q": None, "status": {}}
    node = client.node
    node.create_subscription(JointTrajectory, "joint_trajectory",
                             lambda m: received.append((stamp_to_sec(m.header.stamp), list(m.points[0].positions))),
                             200)
    node.create_subscription(JointState, "joint_states", lambda m: state.update(q=joint_positions(m)),
                             qos_profile_sensor_data)
    node.create_subscription(String, "safety/status", lambda m: state.update(status=json.loads(m.data)), 10)
    inject = node.create_publisher(JointTrajectory, "policy/joint_trajectory", 10)
    names = [f"joint{i}" for i in range(1, 8)] + ["gripper"]

    def command(positions: list[float], names_: list[str] = names) -> None:
        msg = JointTrajectory(joint_names=names_, points=[JointTrajectoryPoint(positions=positions)])
        msg.header.stamp = sec_to_stamp(client.now())
        inject.publish(msg)

    def counts() -> dict:
        return state["status"].get("counts", {})

    try:
        graph.start()
        assert client.spin_until(lambda: counts().get("fallback", 0) >= 1 and state["q"] is not None
                                 and len(received) > 20 and not state["status"]["fallback"], 30.0), \
            f"the graph did not start: {state['status']}, {len(received)} commands"

        # 1. kill the policy process: the fallback (hold) must reach the robot within the watchdog timeout.
        graph.kill_node("policy")
        killed = client.now()
        received.clear()
        gap = client.largest_stamp_gap(received, killed, 3 * WATCHDOG)
        assert gap <= WATCHDOG + 0.1, f"largest gap without a command: {gap:.3f} s"
        assert client.spin_until(lambda: state["status"].get("fallback"), 2.0)
        hold = np.array(received[-1][1])
        np.testing.assert_allclose(hold[:7], state["q"], atol=0.02)

        # 2. NaN, wrong-length and huge commands never reach the robot topic as sent.
        q = state["q"]
        received.clear()
        for bad in ([*q.tolist(), float("nan")], q.tolist(), [1e3] * 8):  # NaN, 7 values for 8 names, huge
            command(bad)
            client.spin_for(0.05)  # the command input keeps only the newest message
        command([*q.tolist(), 0.0, 0.0], names + ["extra"])
        client.spin_for(0.4)
        sent = np.array([p for _, p in received])
        assert np.isfinite(sent).all() and sent.shape[1] == 8
        assert np.abs(sent[:, :7] - q).max() <= 0.25, "a huge command reached the robot"
        for reason in ("NaN or inf in command", "wrong length 7, expected 8", "malformed"):
            assert client.spin_until(lambda r=reason: counts().get(r, 0) >= 1, 2.0), (reason, counts())

        # 3. the e-stop latches: valid commands are rejected until reset.
        assert client.call(Trigger, "/safety/estop").success
        received.clear()
        target = q.copy()
        target[0] += 0.05
        for _ in range(5):
            command([*target.tolist(), 0.0])
            client.spin_for(0.05)
        assert client.spin_until(lambda: counts().get("e-stop latched", 0) >= 5, 2.0), counts()
        assert all(abs(p[0] - target[0]) > 0.02 for _, p in received), "a command passed the latched e-stop"

        # 4. a restarted policy stays blocked while latched; it drives the robot after the reset.
        graph.start_node("policy")
        assert client.spin_until(lambda: counts().get("e-stop latched", 0) >= 40, 20.0), counts()
        assert state["status"]["fallback"] and state["status"]["estopped"]
        assert client.call(Trigger, "/safety/reset").success
        assert client.spin_until(lambda: not state["status"].get("fallback", True)
                                 and not state["status"].get("estopped", True), 5.0), state["status"]
        before = counts().get("e-stop latched", 0)
        client.spin_for(0.5)
        assert counts().get("e-stop latched", 0) == before
    finally:
        codes = graph.stop()
        client.close()
    assert all(code is not None for code in codes.values()), codes
