"""Start-up order over ROS: the policy node takes no observation before its commands can be delivered."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain  # noqa: E402

from robolearn.ros_nodes.launcher import DeployConfig, Graph  # noqa: E402

LIFT = "robolearn/PandaLift-v0"


@pytest.mark.slow
def test_policy_subscribes_to_observations_only_once_its_commands_have_a_listener(tmp_path):
    """Until DDS discovery has matched a subscriber of the command topic, every command is dropped; a robot that
    starts once the policy subscribes (the twin's wait_for_subscribers) would run those first periods on the
    safety node's fallback. The policy therefore subscribes to ``observation`` only once a command listener
    appears, and then answers."""
    import gymnasium as gym
    from rclpy.qos import qos_profile_sensor_data
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
    from robolearn.ros_nodes.convert import observation_msg

    env = gym.make(LIFT)
    obs, _ = env.reset(seed=0)
    env.close()
    domain = fresh_domain()
    cfg = DeployConfig(env_id=LIFT, domain_id=domain, log_dir=str(tmp_path), nodes=["policy"],
                       params={"policy": {"policy": "zero", "control_hz": 50.0}})
    client = Client(domain)
    node = client.node
    obs_pub = node.create_publisher(Float64MultiArray, "observation", qos_profile_sensor_data)
    graph = Graph(cfg)
    received: list[JointTrajectory] = []
    try:
        graph.start()
        # the node is up (its command publisher is discovered) but nobody listens to its commands
        assert client.spin_until(lambda: node.count_publishers("policy/joint_trajectory") >= 1, 30.0), \
            (tmp_path / "policy.log").read_text()
        client.spin_for(1.0)
        assert obs_pub.get_subscription_count() == 0, "the policy took observations with nobody to command"

        node.create_subscription(JointTrajectory, "policy/joint_trajectory", received.append, 10)
        assert client.spin_until(lambda: obs_pub.get_subscription_count() >= 1, 10.0), \
            "the policy did not subscribe to observations once its commands had a listener"
        for step in range(100):
            obs_pub.publish(observation_msg(obs, client.now(), 0, step))
            if client.spin_until(lambda: bool(received), 0.02):
                break
        assert received, "no command answered the observations"
        assert len(received[-1].points[0].positions) == 8
    finally:
        codes = graph.stop()
        client.close()
    assert all(code is not None for code in codes.values()), codes
