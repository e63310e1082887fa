"""Inline safety over ROS: the policy node filters its own commands onto the robot's topic, safety_node (mode
monitor) runs the watchdog and the e-stop; the same faults as the gate's test, as processes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain, joint_positions  # noqa: E402

from robolearn.ros_nodes.launcher import DeployConfig, Graph  # noqa: E402

LIFT = "robolearn/PandaLift-v0"
WATCHDOG = 0.1
MAX_STEP = 0.05  # the largest lead of a target over the measured position (rad); the teleop's leads ~0.19


@pytest.mark.slow
def test_inline_filter_with_monitor_clips_latches_and_falls_back(tmp_path):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool, Float64MultiArray, String
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    from robolearn.ros_nodes.convert import stamp_to_sec

    domain = fresh_domain()
    # One long episode that nothing ends: the zero policy holds the arm still (the expert would lift the cube, and
    # the task's success would end the episode and re-place the arm mid-test: a CI run saw a 0.81 rad "lead").
    cfg = DeployConfig(env_id=LIFT, domain_id=domain, log_dir=str(tmp_path),
                       params={"sim_robot": {"episodes": 0, "step_hz": 50.0, "episode_steps": 100_000},
                               "policy": {"policy": "zero", "control_hz": 50.0, "inline_safety": True,
                                          "limits.max_step": MAX_STEP},
                               "safety": {"mode": "monitor", "limits.watchdog_timeout": WATCHDOG}})
    client = Client(domain)
    graph = Graph(cfg)
    state: dict = {"q": None, "status": {}, "timing": {}}
    received: list[tuple[float, np.ndarray, np.ndarray]] = []  # (header stamp, positions, measured q then)
    node = client.node

    def on_command(m: JointTrajectory) -> None:
        if state["q"] is not None:
            received.append((stamp_to_sec(m.header.stamp), np.array(m.points[0].positions), state["q"].copy()))

    node.create_subscription(JointTrajectory, "joint_trajectory", on_command, 50)
    node.create_subscription(JointState, "joint_states", lambda m: state.update(q=joint_positions(m)),
                             qos_profile_sensor_data)
    node.create_subscription(String, "safety/status", lambda m: state.update(status=json.loads(m.data)), 10)
    node.create_subscription(String, "policy/timing", lambda m: state.update(timing=json.loads(m.data)), 10)
    intervention = node.create_publisher(Bool, "intervention", 1)
    teleop = node.create_publisher(Float64MultiArray, "teleop/action", 1)

    def status() -> dict:
        return state["status"]

    def inline() -> dict:
        return state["timing"].get("safety", {})

    def held_still(since: float) -> bool:
        """Every command since ``since`` is the monitor's hold: one constant target."""
        sent = np.array([p for t, p, _ in received if t >= since])
        return len(sent) > 5 and float(np.ptp(sent[:, :7], axis=0).max()) < 1e-9

    try:
        graph.start()
        assert client.spin_until(lambda: len(received) > 20 and status().get("mode") == "monitor"
                                 and not status()["fallback"] and inline().get("heard"), 30.0), \
            f"the graph did not start: {status()}, {state['timing']}, {len(received)} commands"

        # 1. a huge teleop action is clipped in the policy's process: no target leads the arm by more than a step
        received.clear()
        for _ in range(15):
            intervention.publish(Bool(data=True))
            teleop.publish(Float64MultiArray(data=[1e3, -1e3, 1e3, 1e3, 1.0]))
            client.spin_for(0.02)
        intervention.publish(Bool(data=False))
        client.spin_for(0.2)
        lead = max(float(np.abs(p[:7] - q).max()) for _, p, q in received)
        # against the newest joint_states here, which may be a step older than the filter's (+ one step's motion)
        assert np.isfinite([p for _, p, _ in received]).all() and lead <= 2 * MAX_STEP, lead
        assert client.spin_until(lambda: inline().get("counts", {}).get("clip:velocity/step", 0) >= 1, 2.0)

        # 2. the monitor's e-stop reaches the inline filter: only the monitor's hold reaches the robot
        assert client.call(Trigger, "/safety/estop").success
        assert client.spin_until(lambda: inline().get("estopped") and status().get("fallback"), 3.0), inline()
        # The policy has heard the latch (its report says so): from now on only the monitor's hold arrives. A
        # command already on its way when the monitor latched may have arrived before (counted: blocking it is
        # the gate's job); the status is published every 0.5 s, so read it twice, a status period apart.
        t_latched = client.now()
        client.spin_for(0.6)
        in_flight = status()["counts"].get("command while latched", 0)
        client.spin_for(0.6)
        assert held_still(t_latched) and status()["counts"].get("command while latched", 0) == in_flight, status()
        assert in_flight <= 2, status()

        # 3. a restarted policy node hears the latched state before its first command (transient local)
        graph.kill_node("policy")
        state["timing"] = {}
        graph.start_node("policy")
        assert client.spin_until(lambda: inline().get("counts", {}).get("e-stop latched", 0) >= 10, 20.0), inline()
        assert inline()["estopped"] and state["timing"]["published"] == 0 and held_still(t_latched), state["timing"]
        assert status()["counts"].get("command while latched", 0) == in_flight, status()

        # 4. the reset reaches it too: the policy drives the robot again, the monitor's fallback turns off
        assert client.call(Trigger, "/safety/reset").success
        assert client.spin_until(lambda: not status().get("fallback", True) and not inline().get("estopped", True),
                                 5.0), (status(), inline())

        # 5. kill the policy process: the monitor's fallback reaches the robot within the watchdog timeout
        graph.kill_node("policy")
        killed = client.now()
        received.clear()
        gap = client.largest_stamp_gap(received, killed, 3 * WATCHDOG)
        # The bound on the gap itself is bench/ros_watchdog_load.py's to measure (timeout + one period); this
        # functional check allows two periods more for a 2-core CI machine running the whole graph and pytest.
        assert gap <= WATCHDOG + 0.2, f"largest gap without a command: {gap:.3f} s"
        assert client.spin_until(lambda: status().get("fallback"), 2.0)
        np.testing.assert_allclose(received[-1][1][:7], state["q"], atol=0.02)
    finally:
        codes = graph.stop()
        client.close()
    assert all(code is not None for code in codes.values()), codes
