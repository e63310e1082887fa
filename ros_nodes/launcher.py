"""Start a robolearn node graph as processes, watch its episodes, stop it cleanly.

``robolearn launch configs/deploy/panda_sim.yaml`` (and the tests) use :func:`run_graph`: it writes one
parameter file per node (``/node: ros__parameters`` form), starts each node with
``python -m robolearn.ros_nodes.<module> --ros-args --params-file <file>`` in its own process group, in a
private ``ROS_DOMAIN_ID`` with discovery limited to this host, listens to the ``episode`` topic and
stops every node on Ctrl-C (SIGINT, then SIGTERM, then SIGKILL after ``stop_timeout`` s each) or when
the robot twin reports that its episodes are done.

A graph owns its domain (:mod:`robolearn.ros_nodes.domain`): with ``domain_id`` unset (null, the default)
the launcher takes a domain no ROS node is on; a given ``domain_id`` is probed first and the launch refuses
(:class:`~robolearn.ros_nodes.domain.DomainBusyError`, one line naming the nodes) when nodes are already
there, so two graphs never share one by accident.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import yaml

from robolearn.core.config import ConfigError
from robolearn.ros_nodes.domain import claim_domain
from robolearn.ros_nodes.rosenv import require_rclpy, ros_env, use_ros_env

NODES: dict[str, str] = {
    "sim_robot": "robolearn.ros_nodes.sim_robot_node",
    "policy": "robolearn.ros_nodes.policy_node",
    "safety": "robolearn.ros_nodes.safety_node",
    "teleop": "robolearn.ros_nodes.teleop_node",
    "recorder": "robolearn.ros_nodes.recorder_node",
}
"""Node name -> module (each has ``main()``)."""


@dataclass
class DeployConfig:
    """A node graph: which nodes run, with which parameters."""

    env_id: str = "robolearn/PandaLift-v0"
    """Registered task (every node gets it as its ``env_id`` parameter)."""
    domain_id: int | None = None
    """ROS_DOMAIN_ID of the graph (0..101): refused when ROS nodes are already on it; None (null): a free one."""
    localhost_only: bool = True
    """Limit DDS discovery to this machine."""
    nodes: list[str] = field(default_factory=lambda: ["sim_robot", "policy", "safety"])
    """Nodes to start, from: sim_robot, policy, safety, teleop, recorder."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-node ROS parameters, ``{node: {name: value}}`` (see each node's docstring)."""
    timeout: float = 0.0
    """Stop after this many seconds (0: when the episodes are done, or on Ctrl-C)."""
    stop_timeout: float = 5.0
    """Seconds each stop signal gets before the next, stronger one."""
    log_dir: str = ""
    """Write each node's output to <log_dir>/<node>.log ('' : inherit this terminal)."""

    def __post_init__(self) -> None:
        unknown = [n for n in [*self.nodes, *self.params] if n not in NODES]
        if unknown:
            raise ConfigError(f"unknown nodes {unknown}; choose from {', '.join(NODES)}")
        if self.domain_id is not None and not 0 <= self.domain_id <= 101:
            raise ConfigError(f"domain_id must be in 0..101, got {self.domain_id}")


def ros_params(cfg: DeployConfig, names: list[str] | None = None, extra: dict[str, Any] | None = None
               ) -> dict[str, dict[str, dict[str, Any]]]:
    """ROS 2 parameter-file content ``{"/<node>": {"ros__parameters": {...}}}`` for ``names`` (default: all
    of ``cfg.nodes``): every node gets ``env_id``, then its ``cfg.params`` entry, then ``extra``. The colcon
    package's ``params/<preset>.yaml`` files are this, for the ``configs/deploy`` presets."""
    return {f"/{name}": {"ros__parameters": {"env_id": cfg.env_id, **cfg.params.get(name, {}), **(extra or {})}}
            for name in (names or cfg.nodes)}


@dataclass
class GraphResult:
    """Episodes reported by the robot twin, and how the graph ended."""

    episodes: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    """Last ``safety/status`` and ``policy/timing`` JSON, under those keys."""
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    reason: str = ""
    domain_id: int | None = None
    """The ROS_DOMAIN_ID the graph ran in."""

    @property
    def success_rate(self) -> float:
        return sum(e["success"] for e in self.episodes) / len(self.episodes) if self.episodes else 0.0


class Graph:
    """The running node processes of a :class:`DeployConfig`.

    With ``cfg.domain_id`` None it claims a free domain (:func:`~robolearn.ros_nodes.domain.claim_domain`,
    in ``self.domain``); a given one is taken as is (:func:`run_graph` probes it first; a test puts its own
    client there before the graph).
    """

    def __init__(self, cfg: DeployConfig):
        self.domain = cfg.domain_id if cfg.domain_id is not None else claim_domain(None, cfg.localhost_only)
        self.cfg = cfg = replace(cfg, domain_id=self.domain)
        self.env = ros_env(self.domain, cfg.localhost_only)
        self.procs: dict[str, subprocess.Popen] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="robolearn-launch-")
        self._logs: list[IO[str]] = []

    def start(self, names: list[str] | None = None) -> None:
        for name in names or self.cfg.nodes:
            self.start_node(name)

    def start_node(self, name: str, extra: dict[str, Any] | None = None) -> subprocess.Popen:
        """Start (or restart) node ``name``; ``extra`` parameters override the config's."""
        path = Path(self._tmp.name) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(ros_params(self.cfg, [name], extra)))
        cmd = [sys.executable, "-m", NODES[name], "--ros-args", "--params-file", str(path)]
        out: Any = None
        if self.cfg.log_dir:
            Path(self.cfg.log_dir).mkdir(parents=True, exist_ok=True)
            out = open(Path(self.cfg.log_dir) / f"{name}.log", "a")  # noqa: SIM115  (closed in stop)
            self._logs.append(out)
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                            start_new_session=True)
        return self.procs[name]

    def kill_node(self, name: str) -> None:
        """SIGKILL one node (fault injection: a crashed process)."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> dict[str, int | None]:
        """SIGINT every node, then SIGTERM, then SIGKILL for those still running; returns exit codes."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            for proc in alive:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + self.cfg.stop_timeout
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.05)
        for log in self._logs:
            log.close()
        self._tmp.cleanup()
        return {n: p.poll() for n, p in self.procs.items()}


class Monitor:
    """An rclpy node in this process listening to ``episode``, ``safety/status`` and ``policy/timing``."""

    def __init__(self, domain_id: int):
        rclpy = require_rclpy()
        from rclpy.context import Context
        from rclpy.qos import QoSProfile
        from std_msgs.msg import String

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("launch_monitor", context=self.context)
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.episodes: list[dict[str, Any]] = []
        self.done = False
        self.status: dict[str, Any] = {}
        self.node.create_subscription(String, "episode", self._on_episode, QoSProfile(depth=50))
        for topic in ("safety/status", "policy/timing"):
            self.node.create_subscription(String, topic, lambda m, t=topic: self.status.update({t: json.loads(m.data)}),
                                          QoSProfile(depth=10))

    def _on_episode(self, msg: Any) -> None:
        data = json.loads(msg.data)
        if data.get("done"):
            self.done = True
        else:
            self.episodes.append(data)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=max(0.0, min(0.05, end - time.monotonic())))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def run_graph(cfg: DeployConfig, progress: bool = True, stop: threading.Event | None = None) -> GraphResult:
    """Start the graph in a domain of its own, wait for its episodes (or ``cfg.timeout``, Ctrl-C, or ``stop``
    being set from another thread), stop it; the result. Raises
    :class:`~robolearn.ros_nodes.domain.DomainBusyError` when ``cfg.domain_id`` is given and ROS nodes are
    already on it."""
    cfg = replace(cfg, domain_id=claim_domain(cfg.domain_id, cfg.localhost_only))
    if progress:
        print(f"ROS_DOMAIN_ID {cfg.domain_id}", flush=True)
    use_ros_env(cfg.domain_id, cfg.localhost_only)
    monitor = Monitor(cfg.domain_id)
    graph = Graph(cfg)
    result = GraphResult(domain_id=cfg.domain_id)
    start = time.monotonic()
    try:
        graph.start()
        seen = 0
        while True:
            monitor.spin_for(0.2)
            for ep in monitor.episodes[seen:]:
                if progress:
                    print(f"episode {ep['episode']}: {'success' if ep['success'] else 'failure'} "
                          f"in {ep['length']} steps ({ep.get('held_steps', 0)} without a new command)", flush=True)
            seen = len(monitor.episodes)
            dead = [n for n, p in graph.procs.items() if p.poll() is not None]
            if monitor.done:
                result.reason = "episodes done"
            elif dead:
                result.reason = f"node(s) exited: {', '.join(dead)}"
            elif cfg.timeout and time.monotonic() - start > cfg.timeout:
                result.reason = f"timeout ({cfg.timeout} s)"
            elif stop is not None and stop.is_set():
                result.reason = "stopped"
            if result.reason:
                break
    except KeyboardInterrupt:
        result.reason = "interrupted"
    finally:
        monitor.spin_for(0.6)  # the last status messages
        result.exit_codes = graph.stop()
        result.episodes, result.status = list(monitor.episodes), dict(monitor.status)
        monitor.close()
    return result
