"""``policy_node``: runs a robolearn policy against a robot's observation topic.

Inference runs in a worker thread, off the control timer, so a slow chunk never stalls the command
stream. The worker takes the newest ``observation`` and, every ``replan_every`` executed actions (``Ta``;
0: the policy's whole chunk), computes a new chunk ``(Ta', Da)`` that replaces the action queue; between
replans it feeds observations to the policy's ``observe`` (its history). The node publishes the first
action of a fresh chunk at once and re-phases the control timer on it; the timer (``control_hz``)
publishes the queued actions after that. A tick with an empty queue is a *missed period* (counted).

The policy is a named one (``expert``, ``random``, ``zero``; :func:`robolearn.policy_factory.make_policy`)
or a policy directory (:func:`robolearn.policies.checkpoint.load`). Actions go through the embodiment's
adapter and are published on ``output_topic`` (default ``policy/<command topic>``, which the safety node
filters onto the robot's topic), plus the raw action on ``action`` and timing statistics as JSON on
``policy/timing`` every second (command period mean/std/max in ms, missed periods, inference and
observation-to-command latency percentiles in ms). While ``intervention`` (``std_msgs/Bool``) is true,
a fresh ``teleop/action`` replaces the policy's action (human in the loop).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.ros_nodes.adapters import COMMAND_TOPICS, make_adapter
from robolearn.ros_nodes.convert import MessageError, action_msg, parse_action, parse_observation
from robolearn.ros_nodes.rosenv import require_rclpy, spin_until_shutdown


def load_policy(spec: str, env_id: str, noise: float = 0.0, seed: int = 0) -> Any:
    """A named policy (``expert``, ``random``, ``zero``) or a base / refined policy directory, for ``env_id``."""
    import robolearn  # noqa: F401  (registers the envs)
    from robolearn.policy_factory import NAMED_POLICIES
    from robolearn.policy_factory import load_policy as load

    if spec in NAMED_POLICIES and noise:
        spec = f"{spec}:noise={noise}"
    return load(spec, env_id, seed=seed)


class PolicyRunner:
    """The worker thread and the action queue (no ROS: unit-testable).

    Args:
        policy: a :class:`~robolearn.protocols.Policy`.
        replan_every: actions executed per chunk before replanning (``Ta``); 0: the whole chunk.
        on_chunk: called from the worker thread when a fresh chunk is queued.
    """

    def __init__(self, policy: Any, replan_every: int = 0, on_chunk: Callable[[], None] | None = None):
        if replan_every < 0:
            raise ValueError(f"replan_every must be >= 0, got {replan_every}")
        self.policy, self.replan_every, self.on_chunk = policy, int(replan_every), on_chunk
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._latest: tuple[dict[str, np.ndarray], dict[str, float], float] | None = None
        self._queue: deque[np.ndarray] = deque()
        self._executed = 0
        self._episode: float | None = None
        self.chunk_obs_time = 0.0
        """Arrival time (perf_counter, s) of the observation the newest chunk was computed from."""
        self.infer_ms: deque[float] = deque(maxlen=2000)
        self.error: str | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="policy-worker", daemon=True)
        self._thread.start()

    def push(self, obs: dict[str, np.ndarray], meta: dict[str, float]) -> None:
        """Hand the newest observation to the worker (older unprocessed ones are dropped)."""
        with self._lock:
            self._latest = (obs, meta, time.perf_counter())
        self._event.set()

    def pop(self) -> np.ndarray | None:
        """The next queued action ``(Da,)``, or None when the queue is empty."""
        with self._lock:
            if not self._queue:
                return None
            self._executed += 1
            return self._queue.popleft()

    def stop(self) -> None:
        self._stop = True
        self._event.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop:
            if not self._event.wait(0.1):
                continue
            self._event.clear()
            with self._lock:
                item, self._latest = self._latest, None
            if item is None:
                continue
            try:
                self._handle(*item)
            except Exception as err:  # noqa: BLE001  (reported on the timing topic and the log)
                self.error = f"{type(err).__name__}: {err}"

    def _handle(self, obs: dict[str, np.ndarray], meta: dict[str, float], arrived: float) -> None:
        new_episode = meta["episode"] != self._episode
        if new_episode:
            self.policy.reset()
            self._episode = meta["episode"]
        with self._lock:
            if new_episode:
                self._queue.clear()
            chunk_len = len(self._queue) + self._executed
            limit = self.replan_every or chunk_len
            need = not self._queue or self._executed >= limit
        batch = {k: v[None] for k, v in obs.items()}
        if not need:
            if hasattr(self.policy, "observe"):
                self.policy.observe(batch)
            return
        t0 = time.perf_counter()
        chunk = np.asarray(self.policy.act(batch))[0]
        self.infer_ms.append(1e3 * (time.perf_counter() - t0))
        if chunk.ndim != 2 or not len(chunk):
            raise ValueError(f"policy returned a chunk of shape {chunk.shape}, expected (Ta, Da)")
        keep = chunk[: self.replan_every] if self.replan_every else chunk
        with self._lock:
            self._queue = deque(keep)
            self._executed = 0
            self.chunk_obs_time = arrived
        if self.on_chunk is not None:
            self.on_chunk()


class LoopStats:
    """Command-period and latency statistics (ms) over the last ``window`` commands."""

    def __init__(self, period: float, window: int = 2000):
        self.period = period
        self.intervals: deque[float] = deque(maxlen=window)
        self.latency: deque[float] = deque(maxlen=window)
        self.missed = 0
        self.published = 0
        self.last: float | None = None
        """perf_counter time (s) of the latest command."""

    def published_at(self, t: float, obs_time: float | None) -> None:
        if self.last is not None:
            self.intervals.append(1e3 * (t - self.last))
        if obs_time is not None:
            self.latency.append(1e3 * (t - obs_time))
        self.last = t
        self.published += 1

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"published": self.published, "missed_periods": self.missed,
                                 "period_ms": 1e3 * self.period}
        if self.intervals:
            iv = np.asarray(self.intervals)
            out |= {"interval_mean_ms": float(iv.mean()), "interval_std_ms": float(iv.std()),
                    "interval_max_ms": float(iv.max())}
        if self.latency:
            lat = np.asarray(self.latency)
            out |= {"latency_p50_ms": float(np.percentile(lat, 50)), "latency_p99_ms": float(np.percentile(lat, 99))}
        return out


def main(argv: list[str] | None = None) -> int:
    rclpy = require_rclpy()
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from std_msgs.msg import Bool, Float64MultiArray, String

    rclpy.init(args=argv if argv is not None else sys.argv)
    # The executor and the inference worker hand off every control step; CPython's default 5 ms GIL
    # switch interval would add up to that much to the observation-to-command latency.
    sys.setswitchinterval(2e-4)
    node = rclpy.create_node("policy")
    defaults = {
        "env_id": ("robolearn/PandaLift-v0", "registered robolearn task the policy was made for"),
        "policy": ("expert", "a named policy (expert, random, zero) or a policy directory"),
        "noise": (0.0, "expert sub-optimality (named policies only)"),
        "seed": (0, "policy random seed"),
        "control_hz": (0.0, "command rate, Hz (0: the task's control rate)"),
        "replan_every": (0, "actions executed per chunk before replanning (Ta); 0: the whole chunk"),
        "output_topic": ("", "command topic ('' : policy/<the embodiment's command topic>)"),
    }
    p = {k: node.declare_parameter(k, v, ParameterDescriptor(description=d, dynamic_typing=True)).value
         for k, (v, d) in defaults.items()}
    log = node.get_logger()
    adapter = make_adapter(p["env_id"])
    policy = load_policy(p["policy"], p["env_id"], float(p["noise"]), int(p["seed"]))
    period = 1.0 / float(p["control_hz"]) if p["control_hz"] else float(getattr(adapter, "period", 0.05))
    topic = p["output_topic"] or f"policy/{COMMAND_TOPICS[adapter.embodiment]}"
    cmd_pub = node.create_publisher(adapter.msg_type(), topic, QoSProfile(depth=1))
    act_pub = node.create_publisher(Float64MultiArray, "action", QoSProfile(depth=10))
    timing_pub = node.create_publisher(String, "policy/timing", QoSProfile(depth=10))
    names = [f"a{i}" for i in range(adapter.action_size)]
    stats = LoopStats(period)
    state: dict[str, Any] = {"joint_pos": None, "obs_time": 0.0, "intervention": False, "teleop": None}
    gc = node.create_guard_condition(lambda: send(fresh=True))
    runner = PolicyRunner(policy, int(p["replan_every"]), on_chunk=gc.trigger)

    def on_obs(msg: Any) -> None:
        try:
            obs, meta = parse_observation(msg)
        except MessageError as err:
            log.warning(f"ignored observation: {err}", throttle_duration_sec=1.0)
            return
        state["joint_pos"] = obs.get("joint_pos")
        state["obs_time"] = time.perf_counter()
        runner.push(obs, meta)

    def send(fresh: bool = False) -> None:
        action = runner.pop()
        if fresh:
            timer.reset()
        if action is None:
            # A period is missed when nothing went out for 1.5 periods while observations keep coming.
            quiet = stats.last is not None and time.perf_counter() - stats.last > 1.5 * period
            if quiet and time.perf_counter() - state["obs_time"] < 5 * period:
                stats.missed += 1
            return
        teleop = state["teleop"]
        if state["intervention"] and teleop is not None and time.perf_counter() - teleop[1] < 0.2:
            action = teleop[0]
        now = node.get_clock().now().nanoseconds * 1e-9
        try:
            cmd = adapter.command(action, state["joint_pos"], now)
        except (MessageError, TypeError, ValueError) as err:
            log.error(f"could not map the action to a command: {err}", throttle_duration_sec=1.0)
            return
        cmd_pub.publish(adapter.to_msg(cmd))
        act_pub.publish(action_msg(action, names))
        stats.published_at(time.perf_counter(), runner.chunk_obs_time if fresh else None)

    def on_teleop(msg: Any) -> None:
        try:
            state["teleop"] = (parse_action(msg, adapter.action_size), time.perf_counter())
        except MessageError as err:
            log.warning(f"ignored teleop action: {err}", throttle_duration_sec=1.0)

    def report() -> None:
        summary = stats.summary()
        if runner.infer_ms:
            summary["inference_p50_ms"] = float(np.percentile(np.asarray(runner.infer_ms), 50))
        if runner.error:
            summary["error"] = runner.error
            log.error(f"policy worker: {runner.error}", throttle_duration_sec=5.0)
        timing_pub.publish(String(data=json.dumps(summary)))

    timer = node.create_timer(period, send)
    node.create_subscription(Float64MultiArray, "observation", on_obs, qos_profile_sensor_data)
    node.create_subscription(Bool, "intervention", lambda m: state.update(intervention=bool(m.data)),
                             QoSProfile(depth=1))
    node.create_subscription(Float64MultiArray, "teleop/action", on_teleop, QoSProfile(depth=1))
    node.create_timer(1.0, report)
    log.info(f"policy '{p['policy']}' for {p['env_id']}: commands on '{topic}' at {1 / period:g} Hz")
    try:
        spin_until_shutdown(node)
    finally:
        runner.stop()
        print(f"[policy] loop timing: {json.dumps(stats.summary())}", file=sys.stderr)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
