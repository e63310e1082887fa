"""``recorder_node``: records observation / action / intervention topics into a robolearn dataset.

Each ``action`` message (the command the policy node sent) becomes one step, paired with the newest
``observation`` and the latest ``intervention`` flag (``std_msgs/Bool``). Episode boundaries come from
the ``_episode`` counter carried by every observation; outcomes from the ``episode`` topic
(``std_msgs/String`` JSON from the robot twin, or any episode manager, with ``episode`` and
``success``). An episode is written once its outcome is known (or at shutdown). The dataset is written with
:class:`~robolearn.datasets.writer.EpisodeWriter` at ``out`` (created, or appended to when it exists).
With the ``mcap`` parameter set to a file name, the node also records ``mcap_topics`` (as they
appear: their types come from discovery) into that MCAP file, CDR-serialized as they travel
(:mod:`robolearn.ros_nodes.mcap_log`), readable by the ``mcap`` / ``rosbags`` libraries and Foxglove.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import MessageError, parse_observation
from robolearn.ros_nodes.mcap_log import McapLog, message_class
from robolearn.ros_nodes.rosenv import require_rclpy, shutdown_node, spin_until_shutdown


class StepRecorder:
    """Pairs actions with observations and cuts episodes (no ROS: unit-testable).

    Steps are buffered per episode index and written when the episode's outcome arrives (the
    ``episode`` message may come before or after the next episode's first observation), or at
    :meth:`flush` with an unknown outcome.

    Args:
        writer: an open :class:`~robolearn.datasets.writer.EpisodeWriter`.
    """

    def __init__(self, writer: Any):
        self.writer = writer
        self.obs: dict[str, np.ndarray] | None = None
        self.episode: int | None = None
        self.intervention = False
        self.committed = 0
        self.steps: dict[int, list[tuple[dict[str, np.ndarray], np.ndarray, bool]]] = {}
        self.outcomes: dict[int, bool] = {}

    def on_observation(self, obs: dict[str, np.ndarray], meta: dict[str, float]) -> None:
        self.episode = int(meta["episode"])
        self.obs = obs

    def on_action(self, action: np.ndarray) -> None:
        if self.obs is None or self.episode is None:
            return
        self.steps.setdefault(self.episode, []).append((self.obs, action.astype(np.float32), self.intervention))
        self._write_ready()

    def on_outcome(self, episode: int, success: bool) -> None:
        self.outcomes[int(episode)] = bool(success)
        self._write_ready()

    def _write_ready(self) -> None:
        for ep in sorted(e for e in self.steps if e in self.outcomes and e != self.episode):
            self._write(ep, self.outcomes.pop(ep))
        if self.episode in self.outcomes and self.episode in self.steps:
            self._write(self.episode, self.outcomes.pop(self.episode))

    def _write(self, episode: int, success: bool | None) -> None:
        steps = self.steps.pop(episode, [])
        if not steps:
            return
        self.writer.begin_episode(meta={"source": "ros", "episode": episode})
        for obs, action, intervention in steps:
            self.writer.add_step(obs, action, intervention=intervention)
        self.writer.end_episode(success=success)
        self.committed += 1

    def flush(self) -> None:
        """Write every buffered episode (outcome unknown: the last step's flag)."""
        for ep in sorted(self.steps):
            self._write(ep, self.outcomes.pop(ep, None))


MCAP_TOPICS = ["observation", "action", "intervention", "episode", "joint_states", "safety/status",
               "policy/timing"]
"""Topics the MCAP file records by default."""


class McapRecorder:
    """Subscribes (raw, CDR bytes) to each requested topic once discovery shows its type, into an MCAP file."""

    def __init__(self, node: Any, path: str, topics: list[str], poll_s: float = 0.5):
        self.node, self.log = node, McapLog(path)
        self.wanted = {node.resolve_topic_name(t): t for t in topics}
        self.subs: dict[str, Any] = {}
        node.create_timer(poll_s, self._discover)

    def _discover(self) -> None:
        for name, types in self.node.get_topic_names_and_types():
            if name not in self.wanted or name in self.subs or len(types) != 1:
                continue
            self.log.add_topic(name, types[0])
            self.subs[name] = self.node.create_subscription(
                message_class(types[0]), name, lambda data, n=name: self._on(n, data), self._qos(name), raw=True)

    def _qos(self, topic: str) -> Any:
        """Reliable when every publisher is (commands, episodes), else best effort (sensor data): a reliable
        reader would not match a best-effort writer."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        pubs = self.node.get_publishers_info_by_topic(topic)
        reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in pubs)
        return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable
                          else ReliabilityPolicy.BEST_EFFORT)

    def _on(self, topic: str, data: bytes) -> None:
        self.log.write(topic, data, self.node.get_clock().now().nanoseconds)

    def close(self) -> None:
        self.log.close()
        print(f"[recorder] {self.log.messages} messages on {len(self.subs)} topics written to {self.log.path}",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    rclpy = require_rclpy()
    import gymnasium as gym
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from std_msgs.msg import Bool, Float64MultiArray, String

    import robolearn  # noqa: F401  (registers the envs)
    from robolearn.collect import dataset_info_for
    from robolearn.datasets.writer import EpisodeWriter

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("recorder")
    desc = ParameterDescriptor(dynamic_typing=True)
    env_id = node.declare_parameter("env_id", "robolearn/PandaLift-v0", desc).value
    out = node.declare_parameter("out", "runs/ros_recording", desc).value
    mcap_path = node.declare_parameter("mcap", "", ParameterDescriptor(
        description="also record mcap_topics into this MCAP file ('' : off)")).value
    mcap_topics = list(node.declare_parameter("mcap_topics", MCAP_TOPICS, ParameterDescriptor(
        description="topics the MCAP file records")).value)
    env = gym.make(env_id)
    info = dataset_info_for(env, env_id, [], 0, {"source": "ros recorder_node"})
    env.close()
    writer = EpisodeWriter(out, info)
    rec = StepRecorder(writer)
    log = node.get_logger()

    def on_obs(msg: Any) -> None:
        try:
            rec.on_observation(*parse_observation(msg, keys=list(info.observation)))
        except MessageError as err:
            log.warning(f"ignored observation: {err}", throttle_duration_sec=1.0)

    def on_episode(msg: Any) -> None:
        data = json.loads(msg.data)
        if "success" in data and "episode" in data:
            rec.on_outcome(int(data["episode"]), bool(data["success"]))

    node.create_subscription(Float64MultiArray, "observation", on_obs, qos_profile_sensor_data)
    node.create_subscription(Float64MultiArray, "action",
                             lambda m: rec.on_action(np.asarray(m.data, np.float64)), QoSProfile(depth=50))
    node.create_subscription(Bool, "intervention", lambda m: setattr(rec, "intervention", bool(m.data)),
                             QoSProfile(depth=1))
    node.create_subscription(String, "episode", on_episode, QoSProfile(depth=50))
    mcap = McapRecorder(node, mcap_path, mcap_topics) if mcap_path else None
    try:
        spin_until_shutdown(node)
    finally:
        rec.flush()
        writer.close()
        print(f"[recorder] {rec.committed} episodes written to {out}", file=sys.stderr)
        if mcap is not None:
            mcap.close()
        shutdown_node(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
