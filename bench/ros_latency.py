"""Observation-to-command latency and command-period jitter of the ROS 2 deployment path.

For each control rate (50, 100, 500 Hz by default) a robot stand-in in this process publishes a real
PandaLift ``observation`` (and ``joint_states``) at the rate and times the commands that come back on
``joint_trajectory``, first from a bare rclpy echo node (subscribe, publish a fixed JointTrajectory: the
floor of Python + DDS on this machine), then from ``policy_node`` (``--policy``: the scripted expert, or a
policy directory such as a diffusion base or a refined policy, whose chunks are computed in the node's
worker thread; IK in the adapter) + ``safety_node`` (the full filter; ``--safety inline``: the filter in the
policy node, the safety node its watchdog / e-stop monitor), all in separate processes in a
private ROS domain on loopback. The stand-in does no physics, so the figures are the nodes' own cost.

* latency: command arrival minus the publish time of the newest observation (ms, p50 / p99);
* jitter: standard deviation of the command inter-arrival time (ms); missed: intervals above 1.5 periods;
  unanswered: observations after which no command arrived within one period (a control period the graph
  missed; unlike ``missed`` it does not count a late observation, the stand-in's own scheduling, against it);
* overhead: deployment p50 / p99 minus the echo's, and their ratio.
* safety hop: a command's arrival on the robot topic minus the same command's (by stamp) arrival on the
  policy node's own topic, both at the stand-in; and the policy topic's own observation-to-arrival latency;
* CPU steal: the share of CPU time the hypervisor gave to others while each graph was measured (a VM's
  noise, which moves the echo's own p99 by several ms from one minute to the next).

With ``--vision`` the stand-in also publishes a camera frame (a rendered PandaLift ``front`` view of
``--image-size`` pixels, ``sensor_msgs/Image`` rgb8, or with ``--image-format jpeg|png`` a ``CompressedImage`` on
``image/front/compressed``) stamped like, and just before, each observation, and the policy (unless ``--policy``
names a directory) is an untrained BC policy on proprioception + that camera at ``--policy-image-size``: the node
decodes, resizes and pairs every frame, and its decode / resize times (``policy/timing``) are printed.

With ``--blocks N`` each graph's measured time is split into N blocks run alternately (echo, deploy, echo,
deploy, ...; each graph started afresh per block), so that both graphs sample the same minutes of a shared
machine rather than one minute each; the figures pool the blocks, and each pair's p99 difference is shown.

    python bench/ros_latency.py [--rates 50 100 500] [--duration 10] [--blocks 1] [--policy expert|DIR]
                                [--safety inline] [--vision [--image-format jpeg] [--image-size 128]]
    python bench/ros_latency.py --vision --rates 20 50      # the vision row

(needs the ros extra: ``pip install -e '.[ros]'``)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ros_vision import camera_message, pixel_policy

LIFT = "robolearn/PandaLift-v0"
RT_PRIORITY = int(os.environ.get("ROBOLEARN_BENCH_RT", "0"))
"""SCHED_FIFO priority of every process of both graphs and of the robot stand-in (0: normal scheduling)."""


def echo_main() -> None:
    """The bare rclpy echo node: one JointTrajectory per observation, nothing else."""
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from robolearn.ros_nodes.rosenv import set_realtime, spin_until_shutdown

    rclpy.init()
    node = rclpy.create_node("echo")
    if RT_PRIORITY:
        set_realtime(RT_PRIORITY)
    pub = node.create_publisher(JointTrajectory, "joint_trajectory", QoSProfile(depth=1))
    names = [f"joint{i}" for i in range(1, 8)] + ["gripper"]

    def on_obs(msg: Any) -> None:
        out = JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(positions=list(msg.data[3:11]))])
        out.header.stamp = node.get_clock().now().to_msg()
        pub.publish(out)

    node.create_subscription(Float64MultiArray, "observation", on_obs, qos_profile_sensor_data)
    spin_until_shutdown(node)
    node.destroy_node()
    rclpy.try_shutdown()


class Robot:
    """The robot stand-in: publishes observations at ``rate`` Hz and records command arrivals."""

    def __init__(self, domain: int, camera: Any = None):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray, String
        from trajectory_msgs.msg import JointTrajectory

        from robolearn.sim.registry import gym_make

        env = gym_make(LIFT)  # tasks register through the registry, not on import
        self.obs, _ = env.reset(seed=0)
        env.close()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("bench_robot", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.obs_pub = self.node.create_publisher(Float64MultiArray, "observation", qos_profile_sensor_data)
        self.camera = camera
        """The camera message republished (restamped) before each observation (None: no camera)."""
        self.img_pub = (self.node.create_publisher(type(camera), "image/front" + ("" if hasattr(camera, "encoding")
                                                                                   else "/compressed"),
                                                   qos_profile_sensor_data) if camera is not None else None)
        self.js_pub = self.node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        # The policy node's own output (before the safety node), matched to the filtered command by stamp.
        # Created first: when both copies of a command wait in one wake-up, the executor takes it first.
        self.node.create_subscription(JointTrajectory, "policy/joint_trajectory", self.on_policy_command,
                                      QoSProfile(depth=1))
        self.node.create_subscription(JointTrajectory, "joint_trajectory", self.on_command, QoSProfile(depth=1))
        self.node.create_subscription(String, "policy/timing", self.on_timing, QoSProfile(depth=10))
        self.node.create_subscription(String, "safety/status", self.on_safety, QoSProfile(depth=10))
        self.safety: dict[str, Any] = {}
        """The safety node's last status (counts by reason, fallback)."""
        self.timing: dict[str, Any] = {}
        """The policy node's own figures (observation arrival to publish, in the node), last report."""
        self.arrivals: list[float] = []
        self.latency: list[float] = []
        self.policy_arrival: dict[int, float] = {}
        """Arrival time (s) of each policy-node command on ``policy/joint_trajectory``, by header stamp (ns)."""
        self.policy_latency: list[float] = []
        self.hop: list[float] = []
        """Safety-node hop (s): a command's arrival on the robot topic minus its arrival from the policy node."""
        self.last_obs = 0.0
        self.obs_times: list[float] = []
        """Publish time (perf_counter s) of each observation while recording."""
        self.recording = False

    def on_timing(self, msg: Any) -> None:
        self.timing = json.loads(msg.data)

    def on_safety(self, msg: Any) -> None:
        self.safety = json.loads(msg.data)

    def on_command(self, msg: Any) -> None:
        t = time.perf_counter()
        if self.recording:
            self.arrivals.append(t)
            self.latency.append(t - self.last_obs)
            sent = self.policy_arrival.pop(stamp_ns(msg), None)
            if sent is not None:
                self.hop.append(t - sent)

    def on_policy_command(self, msg: Any) -> None:
        t = time.perf_counter()
        if self.recording:
            self.policy_arrival[stamp_ns(msg)] = t
            self.policy_latency.append(t - self.last_obs)

    def publish(self, step: int) -> None:
        from robolearn.ros_nodes.convert import joint_state_msg, observation_msg, sec_to_stamp

        now = self.node.get_clock().now().nanoseconds * 1e-9
        if self.camera is not None:
            self.camera.header.stamp = sec_to_stamp(now)
            self.img_pub.publish(self.camera)
        js = joint_state_msg([f"joint{i}" for i in range(1, 8)], self.obs["joint_pos"], self.obs["joint_vel"], now)
        self.js_pub.publish(js)
        msg = observation_msg(self.obs, now, 0, step)
        self.last_obs = time.perf_counter()
        self.obs_pub.publish(msg)
        if self.recording:
            self.obs_times.append(self.last_obs)

    def driven(self, safety: bool) -> bool:
        """The policy node publishes, and the safety node (if any) has left its start-up fallback."""
        return self.timing.get("published", 0) > 0 and (not safety or self.safety.get("fallback") is False)

    def run(self, rate: float, warmup: float, duration: float, deploy: bool = False, safety: bool = False,
            ready_timeout: float = 120.0) -> dict[str, Any]:
        """Publish at ``rate`` and record one block of ``duration`` s that starts after ``warmup`` s and, for a
        deployment graph, once the policy node drives the robot (a policy directory loads for seconds, and
        meanwhile a safety node's fallback, at its tick rate, is not the policy's latency). Returns the raw
        block (times in perf_counter s) for :func:`summarize`."""
        drain_until = time.perf_counter() + 0.3  # a stopped graph's last reports must not count for this one
        while time.perf_counter() < drain_until:
            self.executor.spin_once(timeout_sec=0.05)
        self.arrivals, self.latency, self.recording, self.timing, self.safety = [], [], False, {}, {}
        self.policy_arrival, self.policy_latency, self.hop, self.obs_times = {}, [], [], []
        period, step = 1.0 / rate, 0
        start = time.perf_counter()
        next_t, began, steal, node_missed = start, None, (0, 0), [0, 0]
        while True:
            now = time.perf_counter()
            if now >= next_t:
                self.publish(step)
                step += 1
                next_t += period
                if next_t < now:  # fell behind: skip, do not burst
                    next_t = now + period
            if began is None and now - start > warmup and (not deploy or self.driven(safety)):
                began, steal = now, cpu_steal()
                node_missed = [self.timing.get(k, 0) for k in ("missed_periods", "missed_starved")]
            if began is None and now - start > warmup + ready_timeout:
                raise RuntimeError(f"the deployment graph did not drive the robot within {ready_timeout:g} s: "
                                   f"policy/timing {self.timing}, safety/status {self.safety}")
            self.recording = began is not None
            if began is not None and now - began > duration:
                break
            self.executor.spin_once(timeout_sec=max(0.0, min(next_t - time.perf_counter(), 0.002)))
        self.recording = False
        end = cpu_steal()
        return {"arrivals": self.arrivals, "latency": self.latency, "obs_times": self.obs_times,
                "policy_topic_latency": self.policy_latency, "safety_hop": self.hop, "timing": self.timing,
                "safety": self.safety, "steal": (end[0] - steal[0], end[1] - steal[1]),
                "node_missed": [self.timing.get(k, 0) - n for k, n in zip(("missed_periods", "missed_starved"),
                                                                           node_missed, strict=True)]}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def vision_text(r: dict[str, Any]) -> str:
    """The node's image figures of a deployment row ('' without a camera)."""
    v = r.get("node_timing", {}).get("vision")
    if not v:
        return ""
    nan = float("nan")
    return (f" | images paired {v.get('paired')} stale {v.get('stale')} missing {v.get('missing')} refused "
            f"{sum(v.get('refused', {}).values())}, decode p50 {v.get('decode_p50_ms', nan):.3f} p99 "
            f"{v.get('decode_p99_ms', nan):.3f} ms, resize p50 {v.get('resize_p50_ms', nan):.3f} p99 "
            f"{v.get('resize_p99_ms', nan):.3f} ms")


def stamp_ns(msg: Any) -> int:
    """A message's header stamp in integer nanoseconds (the key that pairs a command across the safety hop)."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def cpu_steal() -> tuple[int, int]:
    """``(steal, total)`` CPU time of all CPUs so far, in jiffies, from ``/proc/stat`` ((0, 0) without it).
    Steal is time the hypervisor ran something else while this VM's CPUs were ready to run."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def summarize(blocks: list[dict[str, Any]], period: float, duration: float) -> dict[str, Any]:
    """One graph's figures pooled over its blocks (:meth:`Robot.run`): latency percentiles over every
    command; intervals, ``missed`` and ``unanswered`` within each block (never across the gap between two);
    the node's own counts summed and its p99 the largest of the blocks'; CPU steal over the measured time.
    ``node_missed_in_window``: the node's missed periods between its last reports (one a second) before the
    block began and before it ended, so not its start-up's; ``node_missed_starved_in_window``: those of them
    in which the action queue was empty (inference late)."""
    latency = np.concatenate([b["latency"] for b in blocks]) * 1e3 if blocks else np.zeros(0)
    intervals = [np.diff(b["arrivals"]) * 1e3 for b in blocks if len(b["arrivals"]) > 1]
    out: dict[str, Any] = {"commands": int(sum(len(b["arrivals"]) for b in blocks)),
                           "expected": int(round(duration / period)),
                           "observations": int(sum(len(b["obs_times"]) for b in blocks)),
                           "unanswered": int(sum(unanswered(b["obs_times"], b["arrivals"], period) for b in blocks)),
                           "blocks": len(blocks)}
    steal, total = (sum(b["steal"][i] for b in blocks) for i in (0, 1))
    if total:
        out["cpu_steal_pct"] = 100.0 * steal / total
    if len(latency) < 3 or not intervals:
        return out
    iv = np.concatenate(intervals)
    out |= {"latency_p50_ms": float(np.percentile(latency, 50)), "latency_p99_ms": float(np.percentile(latency, 99)),
            "jitter_ms": float(iv.std()), "interval_max_ms": float(iv.max()),
            "missed": int(np.sum(iv > 1.5 * period * 1e3))}
    for name in ("policy_topic_latency", "safety_hop"):
        values = np.concatenate([b[name] for b in blocks]) * 1e3
        if len(values) >= 3:  # only with the safety node in the graph
            out |= {f"{name}_p50_ms": float(np.percentile(values, 50)),
                    f"{name}_p99_ms": float(np.percentile(values, 99))}
    timings = [b["timing"] for b in blocks if b["timing"]]
    if timings:
        for key in ("missed_periods", "dropped_observations"):
            if all(key in t for t in timings):
                out[f"node_{key}"] = int(sum(t[key] for t in timings))
        for key in ("latency_p50_ms", "inference_p50_ms"):
            if all(key in t for t in timings):
                out[f"node_{key}"] = float(np.median([t[key] for t in timings]))
        if all("latency_p99_ms" in t for t in timings):
            out["node_latency_p99_ms"] = float(max(t["latency_p99_ms"] for t in timings))
        out["node_missed_in_window"] = int(sum(b["node_missed"][0] for b in blocks))
        out["node_missed_starved_in_window"] = int(sum(b["node_missed"][1] for b in blocks))
        out["node_timing"] = timings[-1]
        out["safety_status"] = blocks[-1]["safety"]
    return out


def block_p99_ms(block: dict[str, Any]) -> float:
    """One block's observation-to-command p99 latency (ms; NaN with fewer than 3 commands)."""
    return float(np.percentile(np.asarray(block["latency"]) * 1e3, 99)) if len(block["latency"]) >= 3 else float("nan")


def unanswered(obs_times: list[float], arrivals: list[float], period: float) -> int:
    """Observations (publish times, s) after which no command arrived within ``period`` s."""
    if not obs_times:
        return 0
    t, cmd = np.asarray(obs_times), np.asarray(arrivals)
    first = np.searchsorted(cmd, t)  # the first command at or after each observation
    answered = np.zeros(len(t), bool)
    inside = first < len(cmd)
    answered[inside] = cmd[first[inside]] < t[inside] + period
    return int((~answered).sum())


def fmt(r: dict[str, float]) -> str:
    nan = float("nan")
    return (f"p50 {r.get('latency_p50_ms', nan):.3f} p99 {r.get('latency_p99_ms', nan):.3f} ms "
            f"jitter {r.get('jitter_ms', nan):.3f} ms")


def hop_text(r: dict[str, float]) -> str:
    """The policy-topic latency and safety-hop figures of a deployment row ('' without the safety node)."""
    if "safety_hop_p50_ms" not in r:
        return ""
    return (f" | policy topic at the robot p50 {r['policy_topic_latency_p50_ms']:.3f} p99 "
            f"{r['policy_topic_latency_p99_ms']:.3f} ms, safety hop p50 {r['safety_hop_p50_ms']:.3f} "
            f"p99 {r['safety_hop_p99_ms']:.3f} ms")


def blocks_text(row: dict[str, Any], echo: dict[str, Any], deploy: dict[str, Any]) -> str:
    """The paired-block p99 overheads and the CPU steal of each graph ('' for a single block)."""
    paired = row.get("block_overhead_p99_ms")
    steal = (f" | CPU steal echo {echo['cpu_steal_pct']:.1f}% deploy {deploy['cpu_steal_pct']:.1f}%"
             if "cpu_steal_pct" in echo and "cpu_steal_pct" in deploy else "")
    if not paired or len(paired) < 2:
        return steal
    return (" | p99 overhead per block pair " + " ".join(f"{v:+.2f}" for v in paired)
            + f" ms, median {row['median_block_overhead_p99_ms']:+.2f}" + steal)


def spawn(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def deployment_cmds(rate: float, tmp: Path, policy: str, safety: str = "gate", tick_hz: float = 100.0,
                    inference: str = "auto", extra: dict[str, Any] | None = None,
                    safety_extra: dict[str, Any] | None = None) -> list[list[str]]:
    """The policy node and, by ``safety``: ``gate``, the safety node in front of the robot topic; ``inline``,
    the filter in the policy node and the safety node as its monitor; ``none``, no safety at all. ``extra`` and
    ``safety_extra``: further parameters of the policy and safety nodes."""
    params = {"policy": {"env_id": LIFT, "policy": policy, "control_hz": float(rate), "rt_priority": RT_PRIORITY,
                         "inference": inference, **(extra or {})},
              "safety": {"env_id": LIFT, "tick_hz": float(tick_hz), "rt_priority": RT_PRIORITY,
                         **(safety_extra or {})}}
    if safety == "none":
        params["policy"]["output_topic"] = "joint_trajectory"
    elif safety == "inline":
        params["policy"]["inline_safety"] = True
        params["safety"]["mode"] = "monitor"
    cmds = []
    nodes = (("policy", "policy_node"),) + ((("safety", "safety_node"),) if safety != "none" else ())
    for name, module in nodes:
        path = tmp / f"{name}_{rate:g}.yaml"
        path.write_text(yaml.safe_dump({f"/{name}": {"ros__parameters": params[name]}}))
        cmds.append([sys.executable, "-m", f"robolearn.ros_nodes.{module}", "--ros-args", "--params-file", str(path)])
    return cmds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 100.0, 500.0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per rate and graph")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (node start-up)")
    parser.add_argument("--blocks", type=int, default=1,
                        help="split each graph's --duration into this many blocks run alternately (echo, deploy, "
                             "echo, ...), each graph restarted per block, so that both see the same minutes of a "
                             "shared machine; figures pool the blocks, and each pair's p99 difference is shown")
    parser.add_argument("--policy", default="expert",
                        help="policy_node's policy: expert, or a policy directory (diffusion base, refined policy)")
    parser.add_argument("--rt-priority", type=int, default=0,
                        help="SCHED_FIFO priority (1-99) for the stand-in, the echo and the deployment nodes "
                             "(the policy's inference worker stays at normal priority); needs root / CAP_SYS_NICE")
    parser.add_argument("--safety", default="gate", choices=["gate", "inline", "none"],
                        help="gate: policy -> safety node -> robot (two hops); inline: the filter in the policy "
                             "node, the safety node a monitor (one hop); none: diagnostic, no safety")
    parser.add_argument("--safety-tick-hz", type=float, default=100.0, help="the safety node's watchdog rate")
    parser.add_argument("--inference", default="auto", choices=["auto", "process", "thread"],
                        help="where policy_node runs the policy (its 'inference' parameter)")
    parser.add_argument("--policy-param", action="append", default=[], metavar="KEY=VALUE",
                        help="another policy_node parameter (YAML value), e.g. gc_freeze=false; repeatable")
    parser.add_argument("--vision", action="store_true",
                        help="publish a camera frame with each observation and (unless --policy is a directory) run "
                             "an untrained pixel BC policy: the vision row (use --rates 20 50)")
    parser.add_argument("--image-format", default="raw", choices=["raw", "jpeg", "png"],
                        help="--vision: Image rgb8 (raw) or a CompressedImage")
    parser.add_argument("--image-size", type=int, default=128, help="--vision: published frame size (pixels)")
    parser.add_argument("--policy-image-size", type=int, default=84,
                        help="--vision: the pixel policy's input size (frames are resized to it)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS_DOMAIN_ID (refused when ROS nodes are on it; default: a free one)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.blocks < 1:
        parser.error(f"--blocks must be at least 1, got {args.blocks}")
    extra = {}
    for item in args.policy_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--policy-param takes KEY=VALUE, got {item!r}")
        extra[key] = yaml.safe_load(value)
    if args.echo:
        echo_main()
        return
    from robolearn.ros_nodes.domain import claim_domain
    from robolearn.ros_nodes.rosenv import use_ros_env

    args.domain_id = claim_domain(args.domain_id)
    print(f"ROS_DOMAIN_ID {args.domain_id}", flush=True)
    os.environ["ROBOLEARN_BENCH_RT"] = str(args.rt_priority)  # the echo child reads it
    global RT_PRIORITY
    RT_PRIORITY = args.rt_priority
    env = use_ros_env(args.domain_id)
    camera = camera_message(args.image_format, args.image_size) if args.vision else None
    robot = Robot(args.domain_id, camera)
    if RT_PRIORITY:
        from robolearn.ros_nodes.rosenv import set_realtime

        set_realtime(RT_PRIORITY)
    policy_tmp = tempfile.TemporaryDirectory()
    if args.vision and args.policy == "expert":
        args.policy = pixel_policy(Path(policy_tmp.name), args.policy_image_size)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "duration_s": args.duration, "blocks": args.blocks,
                               "policy": args.policy, "vision": args.vision and {
                                   "format": args.image_format, "size": args.image_size,
                                   "policy_size": args.policy_image_size},
                               "safety": args.safety, "policy_params": extra,
                               "rt_priority": RT_PRIORITY, "rates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for rate in args.rates:
                graphs = {"echo": [[sys.executable, __file__, "--echo"]],
                          "deploy": deployment_cmds(rate, Path(tmp), args.policy, args.safety,
                                                    args.safety_tick_hz, args.inference, extra)}
                blocks: dict[str, list[dict[str, Any]]] = {"echo": [], "deploy": []}
                for _ in range(args.blocks):  # echo, deploy, echo, deploy, ...: both see the same minutes
                    for graph, cmds in graphs.items():
                        procs = [spawn(c, env) for c in cmds]
                        try:
                            blocks[graph].append(robot.run(rate, args.warmup, args.duration / args.blocks,
                                                           deploy=graph == "deploy", safety=args.safety != "none"))
                        finally:
                            stop(procs)
                        time.sleep(0.5)
                row = {graph: summarize(b, 1.0 / rate, args.duration) for graph, b in blocks.items()}
                e, d = row["echo"], row["deploy"]
                if "latency_p50_ms" in e and "latency_p50_ms" in d:
                    row["overhead_p50_ms"] = d["latency_p50_ms"] - e["latency_p50_ms"]
                    row["overhead_p99_ms"] = d["latency_p99_ms"] - e["latency_p99_ms"]
                    row["ratio_p50"] = d["latency_p50_ms"] / e["latency_p50_ms"]
                    pairs = zip(blocks["echo"], blocks["deploy"], strict=True)
                    paired = [block_p99_ms(db) - block_p99_ms(eb) for eb, db in pairs]
                    row["block_overhead_p99_ms"] = paired
                    row["median_block_overhead_p99_ms"] = float(np.nanmedian(paired))
                results["rates"][f"{rate:g}"] = row
                print(f"{rate:5g} Hz  echo {fmt(e)} missed {e.get('missed')} unanswered {e.get('unanswered')} | "
                      f"deploy {fmt(d)} missed {d.get('missed')}/{d.get('expected')} unanswered "
                      f"{d.get('unanswered')} | ratio p50 {row.get('ratio_p50', float('nan')):.2f}"
                      f" | in the policy node: p50 {d.get('node_latency_p50_ms', float('nan')):.3f} p99 "
                      f"{d.get('node_latency_p99_ms', float('nan')):.3f} ms, missed periods "
                      f"{d.get('node_missed_in_window')} measured ({d.get('node_missed_starved_in_window')} with the "
                      f"queue empty; {d.get('node_missed_periods')} from start-up), "
                      f"inference p50 "
                      f"{d.get('node_inference_p50_ms', float('nan')):.2f} ms, collector passes / longest ms "
                      f"{d.get('node_timing', {}).get('gc')}{hop_text(d)}{vision_text(d)}{blocks_text(row, e, d)}",
                      flush=True)
        finally:
            robot.close()
            policy_tmp.cleanup()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
