"""``recorder_node``: records observation / action / intervention topics into a robolearn dataset.

Each step is an ``observation`` paired with the ``action`` (the command the policy node sent) that answered it,
which the policy node names by the observation's ``_episode`` / ``_step`` (an untagged action answers the newest
observation), and the latest ``intervention`` flag (``std_msgs/Bool``); see :class:`StepRecorder`. Episode
boundaries come from the ``_episode`` counter carried by every observation; outcomes from the ``episode`` topic
(``std_msgs/String`` JSON from the robot twin, or any episode manager, with ``episode`` and ``success``; the
twin's ``{"done": true}`` ends the run). An episode is written once its outcome is known and its last action
is in (or at shutdown). The dataset is written with
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

from robolearn.ros_nodes.convert import MessageError, parse_observation, parse_tagged_action
from robolearn.ros_nodes.mcap_log import McapLog, message_class
from robolearn.ros_nodes.rosenv import require_rclpy, run_node
from robolearn.sim.registry import gym_make

require_rclpy()
from rcl_interfaces.msg import ParameterDescriptor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402

Key = tuple[int, int]
"""A step: ``(episode, step)`` of its observation."""


class StepRecorder:
    """Pairs actions with the observations they answer and cuts episodes (no ROS: unit-testable).

    A step is keyed by its observation's ``(episode, step)``: a tagged action (the policy node's; see
    :mod:`robolearn.ros_nodes.convert`) names that observation, an untagged one answers the newest observation
    received. When several actions answer one observation (the policy's clock published again while the robot's
    next observation was late), the last one is kept: that is the command the robot applied at its next step.
    An observation no action answered (the robot held its previous command) is not a step, and an action whose
    observation never arrived (best-effort, dropped) is counted in ``unpaired``.

    Episode ``e`` is written once its outcome is known and no more of its actions can be on their way: an action
    of a later episode has arrived (actions come in order on one topic), the robot has published ``lag``
    observations of a later episode, :meth:`finish` (the run is over) or :meth:`flush` (shutdown; an unknown
    outcome then). Actions for an episode already written are counted in ``late`` and dropped.

    Args:
        writer: an open :class:`~robolearn.datasets.writer.EpisodeWriter`.
        lag: observations of the next episode after which an episode with a known outcome is written.
    """

    def __init__(self, writer: Any, lag: int = 5):
        self.writer, self.lag = writer, int(lag)
        self.obs: dict[Key, dict[str, np.ndarray]] = {}
        self.actions: dict[Key, tuple[np.ndarray, bool]] = {}
        self.newest: Key | None = None
        self.intervention = False
        self.outcomes: dict[int, bool] = {}
        self.written: set[int] = set()
        self.action_episode = -1  # the latest episode an action answered
        self.committed = self.late = self.unpaired = 0

    def on_observation(self, obs: dict[str, np.ndarray], meta: dict[str, float]) -> None:
        key = (int(meta["episode"]), int(meta["step"]))
        if key[0] in self.written:
            return
        self.obs[key] = obs
        self.newest = key
        self._write_ready()

    def on_action(self, action: np.ndarray, meta: dict[str, float] | None = None) -> None:
        """``action`` ``(Da,)``; ``meta``: the ``episode`` / ``step`` it answers (None or empty: the newest)."""
        key = (int(meta["episode"]), int(meta["step"])) if meta and "episode" in meta else self.newest
        if key is None:
            return
        if key[0] in self.written:
            self.late += 1
            return
        self.actions[key] = (np.asarray(action, np.float32), self.intervention)
        self.action_episode = max(self.action_episode, key[0])
        self._write_ready()

    def on_outcome(self, episode: int, success: bool) -> None:
        self.outcomes[int(episode)] = bool(success)
        self._write_ready()

    def finish(self) -> None:
        """The run is over (the robot said so): write every episode whose outcome is known."""
        for ep in sorted(self.outcomes):
            self._write(ep, self.outcomes.pop(ep))

    def flush(self) -> None:
        """Write every buffered episode (an unknown outcome where none arrived)."""
        self.finish()
        for ep in sorted({k[0] for k in self.actions}):
            self._write(ep, None)

    def _write_ready(self) -> None:
        newest = self.newest or (-1, 0)
        for ep in sorted(self.outcomes):
            if self.action_episode > ep or (newest[0] > ep and newest[1] >= self.lag):
                self._write(ep, self.outcomes.pop(ep))

    def _write(self, episode: int, success: bool | None) -> None:
        self.written.add(episode)
        taken = [(k, self.actions.pop(k)) for k in sorted(k for k in self.actions if k[0] == episode)]
        steps = [(self.obs[k], *answer) for k, answer in taken if k in self.obs]
        self.unpaired += len(taken) - len(steps)
        pending = {k[0] for k in self.actions}
        for k in [k for k in self.obs if k[0] == episode or (k[0] < episode and k[0] not in pending)]:
            self.obs.pop(k)
        if not steps:
            return
        self.writer.begin_episode(meta={"source": "ros", "episode": episode})
        for obs, action, intervention in steps:
            self.writer.add_step(obs, action, intervention=intervention)
        self.writer.end_episode(success=success)
        self.committed += 1


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
            # A topic is listed as soon as anyone subscribes to it (this node's own recorder among them), but its
            # QoS is the publishers': wait until one has been discovered.
            pubs = self.node.get_publishers_info_by_topic(name)
            if not pubs:
                continue
            self.log.add_topic(name, types[0])
            self.subs[name] = self.node.create_subscription(
                message_class(types[0]), name, lambda data, n=name: self._on(n, data), self._qos(pubs), raw=True)

    @staticmethod
    def _qos(pubs: list[Any]) -> Any:
        """Reliable when every publisher is (commands, episodes), else best effort (sensor data): a reliable
        reader would not match a best-effort writer."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in pubs)
        return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable
                          else ReliabilityPolicy.BEST_EFFORT)

    def _on(self, topic: str, data: bytes) -> None:
        self.log.write(topic, data, self.node.get_clock().now().nanoseconds)

    def close(self) -> None:
        self.log.close()
        print(f"[recorder] {self.log.messages} messages on {len(self.subs)} topics written to {self.log.path}",
              file=sys.stderr)


class RecorderNode(Node):
    """The recorder node; see the module docstring. ``**kwargs`` go to ``Node`` (``context``...)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        from robolearn.collect import dataset_info_for
        from robolearn.datasets.writer import EpisodeWriter

        desc = ParameterDescriptor(dynamic_typing=True)
        env_id = self.declare_parameter("env_id", "robolearn/PandaLift-v0", desc).value
        self.out = self.declare_parameter("out", "runs/ros_recording", desc).value
        mcap_path = self.declare_parameter("mcap", "", ParameterDescriptor(
            description="also record mcap_topics into this MCAP file ('' : off)")).value
        mcap_topics = list(self.declare_parameter("mcap_topics", MCAP_TOPICS, ParameterDescriptor(
            description="topics the MCAP file records")).value)
        env = gym_make(env_id)
        self.info = dataset_info_for(env, env_id, [], 0, {"source": "ros recorder_node"})
        env.close()
        self.writer = EpisodeWriter(self.out, self.info)
        self.rec = StepRecorder(self.writer)
        # best effort as published, but a deep queue: a recorder that falls behind for a moment loses no observation
        obs_qos = QoSProfile(depth=100, reliability=qos_profile_sensor_data.reliability,
                             durability=qos_profile_sensor_data.durability)
        self.create_subscription(Float64MultiArray, "observation", self.on_obs, obs_qos)
        self.create_subscription(Float64MultiArray, "action", self.on_action, QoSProfile(depth=100))
        self.create_subscription(Bool, "intervention", lambda m: setattr(self.rec, "intervention", bool(m.data)),
                                 QoSProfile(depth=1))
        self.create_subscription(String, "episode", self.on_episode, QoSProfile(depth=50))
        self.mcap = McapRecorder(self, mcap_path, mcap_topics) if mcap_path else None

    def on_obs(self, msg: Any) -> None:
        try:
            self.rec.on_observation(*parse_observation(msg, keys=list(self.info.observation)))
        except MessageError as err:
            self.get_logger().warning(f"ignored observation: {err}", throttle_duration_sec=1.0)

    def on_episode(self, msg: Any) -> None:
        data = json.loads(msg.data)
        if "success" in data and "episode" in data:
            self.rec.on_outcome(int(data["episode"]), bool(data["success"]))
        elif data.get("done"):
            self.rec.finish()

    def on_action(self, msg: Any) -> None:
        try:
            self.rec.on_action(*parse_tagged_action(msg))
        except MessageError as err:
            self.get_logger().warning(f"ignored action: {err}", throttle_duration_sec=1.0)

    def close(self) -> None:
        """At shutdown: write the buffered episodes, close the dataset and the MCAP file."""
        rec = self.rec
        rec.flush()
        self.writer.close()
        print(f"[recorder] {rec.committed} episodes written to {self.out} ({rec.late} late and {rec.unpaired} "
              "unpaired actions dropped)", file=sys.stderr)
        if self.mcap is not None:
            self.mcap.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(RecorderNode, argv)


if __name__ == "__main__":
    sys.exit(main())
