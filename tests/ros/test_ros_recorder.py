"""The recorder's step pairing and episode cuts (StepRecorder, no graph) into a real dataset, and the MCAP
recorder's topic discovery on a real rclpy node."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain  # noqa: E402

import robolearn.sim.envs  # noqa: E402, F401  (registers the tasks with gymnasium)
from robolearn.collect import dataset_info_for  # noqa: E402
from robolearn.datasets.reader import EpisodeDataset  # noqa: E402
from robolearn.datasets.writer import EpisodeWriter  # noqa: E402
from robolearn.ros_nodes.recorder_node import McapRecorder, StepRecorder  # noqa: E402

LIFT = "robolearn/PandaLift-v0"


def _obs(env: gym.Env, value: float) -> dict[str, np.ndarray]:
    """An observation of ``env``'s features, every entry ``value`` (identifies the step in the dataset)."""
    return {k: np.full(space.shape, value, np.float32) for k, space in env.observation_space.spaces.items()}


def _meta(episode: int, step: int) -> dict[str, float]:
    return {"stamp": 0.0, "episode": float(episode), "step": float(step)}


def test_actions_pair_with_the_observation_they_answer_and_episodes_wait_for_their_last_action(tmp_path):
    env = gym.make(LIFT)
    writer = EpisodeWriter(tmp_path / "ds", dataset_info_for(env, LIFT, [], 0, {"source": "test"}))
    rec = StepRecorder(writer, lag=3)
    act = np.arange(5, dtype=np.float64)

    # episode 0: step 1's observation is handled before step 0's action (two subscriptions, any order)
    rec.on_observation(_obs(env, 0.0), _meta(0, 0))
    rec.on_observation(_obs(env, 1.0), _meta(0, 1))
    rec.on_action(act + 0.0, _meta(0, 0))
    rec.on_action(act + 1.0, _meta(0, 1))
    rec.on_action(act + 1.5, _meta(0, 1))  # the policy's clock answered step 1 again: the last one is applied
    rec.on_observation(_obs(env, 2.0), _meta(0, 2))  # held by the robot: nobody answered it
    rec.on_observation(_obs(env, 3.0), _meta(0, 3))
    rec.on_outcome(0, True)  # the outcome is in before step 3's action ...
    rec.on_observation(_obs(env, 10.0), _meta(1, 0))
    assert rec.committed == 0  # ... which may still be on its way
    rec.on_action(act + 3.0, _meta(0, 3))
    rec.intervention = True
    rec.on_action(act + 10.0)  # untagged: answers the newest observation (episode 1, step 0); episode 0 is over
    assert rec.committed == 1
    rec.on_action(act + 3.5, _meta(0, 3))  # too late: episode 0 is written
    assert rec.late == 1

    # episode 1: the outcome, then observations of episode 2 without any action: written after ``lag`` of them
    rec.on_observation(_obs(env, 11.0), _meta(1, 1))
    rec.on_action(act + 11.0, _meta(1, 1))
    rec.on_action(act + 12.0, _meta(1, 2))  # its observation was dropped (best effort)
    rec.on_outcome(1, False)
    for step in range(3):
        rec.on_observation(_obs(env, 20.0 + step), _meta(2, step))
    assert rec.committed == 1
    rec.on_observation(_obs(env, 23.0), _meta(2, 3))
    assert rec.committed == 2 and rec.unpaired == 1

    # episode 2: the robot's "done" writes it at once
    rec.on_action(act + 23.0, _meta(2, 3))
    rec.on_outcome(2, True)
    rec.finish()
    rec.flush()
    writer.close()
    assert rec.committed == 3

    ds = EpisodeDataset(tmp_path / "ds")
    ep0, ep1, ep2 = (ds.episode(i) for i in range(3))
    assert [ep0.record.success, ep1.record.success, ep2.record.success] == [True, False, True]
    key = next(iter(ep0.obs))
    np.testing.assert_allclose(ep0.obs[key][:, 0], [0.0, 1.0, 3.0])
    np.testing.assert_allclose(ep0.action[:, 0], [0.0, 1.5, 3.0])
    np.testing.assert_allclose(ep1.obs[key][:, 0], [10.0, 11.0])
    np.testing.assert_allclose(ep1.action[:, 0], [10.0, 11.0])
    assert ep1.intervention.tolist() == [True, True]
    np.testing.assert_allclose(ep2.action[:, 0], [23.0])


@pytest.mark.slow
def test_mcap_recorder_waits_for_a_publisher_to_pick_the_topics_qos(tmp_path):
    """A topic is listed as soon as anyone subscribes to it, the recorder's own node included; subscribing then,
    with no publisher to read the QoS from, would pick a reliable reader that a best-effort sensor publisher
    never matches (a CI run recorded no observation at all)."""
    from mcap.reader import make_reader
    from rclpy.qos import qos_profile_sensor_data
    from std_msgs.msg import Float64MultiArray

    client = Client(fresh_domain())
    node = client.node
    try:
        node.create_subscription(Float64MultiArray, "observation", lambda m: None, qos_profile_sensor_data)
        rec = McapRecorder(node, str(tmp_path / "run.mcap"), ["observation"], poll_s=0.05)
        client.spin_for(0.5)
        assert "/observation" not in rec.subs  # listed (our own subscription), but nobody publishes yet
        pub = node.create_publisher(Float64MultiArray, "observation", qos_profile_sensor_data)
        assert client.spin_until(lambda: "/observation" in rec.subs, 5.0)
        for i in range(10):
            pub.publish(Float64MultiArray(data=[float(i)]))
            client.spin_for(0.05)
        rec.close()
    finally:
        client.close()
    with open(tmp_path / "run.mcap", "rb") as f:
        messages = list(make_reader(f).iter_messages())
    assert len(messages) >= 8, len(messages)  # best effort on loopback: perhaps the first one or two
