"""``policy_node``: runs a robolearn policy against a robot's observation topic.

One command goes out per control period (``control_hz``), triggered by that period's ``observation``:
the action is popped from a queue, mapped by the embodiment's adapter and published, so the
observation-to-command path holds no inference. Inference runs in a worker thread
(:class:`~robolearn.ros_nodes.policy_runner.PolicyRunner`) that refills the queue with a new chunk
``(Ta', Da)`` every ``replan_every`` executed actions (``Ta``; 0: the policy's whole chunk), starting
``lead`` actions before the current chunk runs out, so a slow chunk never stalls the command stream
(``inference``: a policy directory runs in a child process by default,
:class:`~robolearn.ros_nodes.remote_policy.RemotePolicy`, so inference never holds this process's GIL);
between replans it feeds observations to the policy's ``observe`` (its history). A policy whose chunks are
one action long (a residual-refined one, which ``inference=auto`` keeps in this process) computes every
command on the command path; ``act_in_callback`` computes it in the observation callback itself. When
observations come
slower than the control rate (or stop), the control timer publishes instead. A period in which nothing
could be published while observations keep coming is a *missed period* (counted, and counted apart when an
observation in it found the action queue empty: inference was late, rather than this process).

The policy is a named one (``expert``, ``random``, ``zero``; :func:`robolearn.policy_factory.make_policy`) or
a policy directory (:func:`robolearn.policies.checkpoint.load`), whose networks run on the ``device``
parameter (default ``auto``: the GPU where torch sees one, else the CPU; observations and actions stay numpy).
Actions go through the embodiment's adapter and are published on ``output_topic`` (default
``policy/<command topic>``, which the safety node filters onto the robot's topic), plus the raw action on
``action`` and timing statistics as JSON on ``policy/timing`` every second (command period mean/std/max in
ms, missed periods, inference and observation-to-command latency percentiles in ms). While ``intervention``
(``std_msgs/Bool``) is true, a fresh ``teleop/action`` replaces the policy's action (human in the loop). With
``inline_safety`` the safety filter runs in this process and commands go straight to the robot's topic
(:mod:`robolearn.ros_nodes.inline_safety`; ``safety_node`` then runs as a monitor), and the node subscribes to
observations only once the monitor has been heard. Each ``action`` carries the ``_stamp`` / ``_episode`` /
``_step`` of the observation it answers.

A policy that reads camera images (``pixels/<camera>`` keys) gets them from ``image/<camera>``
(``sensor_msgs/Image``, rgb8 / bgr8) or ``image/<camera>/compressed`` (``sensor_msgs/CompressedImage``, jpeg / png;
remap either to a camera driver's topic), decoded and resized to its input size
(:class:`~robolearn.ros_nodes.image_sync.CameraInputs`). Each observation is paired by header stamp with each
camera's newest frame within ``max_image_age`` s of it; without one (missing, stale) the node sends no command
(none from the timer either, and the chunk queue is emptied) until images come back, so the safety node's
watchdog takes over; those periods, refused images by reason, and decode / resize times are in
``policy/timing`` under ``vision``. Only the keys the policy reads are fed to it (a pixel policy built on
proprioception + images never sees the observation topic's privileged object state).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from robolearn.policy_factory import NAMED_POLICIES
from robolearn.refine.layout import refined_method
from robolearn.rl.devices import check_device
from robolearn.ros_nodes.convert import MessageError, action_msg, clock_sec, parse_action, parse_observation
from robolearn.ros_nodes.embodiments import embodiment_for
from robolearn.ros_nodes.embodiments.base import Embodiment
from robolearn.ros_nodes.image_sync import CameraInputs, pixel_shapes
from robolearn.ros_nodes.inline_safety import InlineSafety
from robolearn.ros_nodes.policy_runner import LoopStats, PolicyRunner
from robolearn.ros_nodes.remote_policy import RemotePolicy, load_policy
from robolearn.ros_nodes.rosenv import GcPauses, declare_parameters, require_rclpy, run_node, set_realtime

require_rclpy()
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402

PARAMETERS = {
    "env_id": ("robolearn/PandaLift-v0", "registered robolearn task the policy was made for"),
    "policy": ("expert", "a named policy (expert, random, zero) or a policy directory"),
    "noise": (0.0, "expert sub-optimality (named policies only)"),
    "seed": (0, "policy random seed"),
    "device": ("auto", "torch device of a policy directory's networks: auto (cuda if available, else mps, else "
                       "cpu; cpu on a machine without an accelerator), cpu, cuda, cuda:N or mps; named policies "
                       "run no torch"),
    "control_hz": (0.0, "command rate, Hz (0: the task's control rate)"),
    "replan_every": (0, "actions executed per chunk before replanning (Ta); 0: the whole chunk (the "
                        "policy's Ta with reserve)"),
    "reserve": (True, "a policy that predicts past the Ta actions it executes (BC, diffusion) keeps the rest "
                      "of each chunk in reserve, sent when the next chunk is late instead of missing the period"),
    "lead": (-1, "start the next chunk when this many actions of the current one are left (hides "
                 "inference); -1: from the measured inference time, covering 1.25x its p90 and the slowest "
                 "recent chunk (0 when a chunk takes under half a period: then planned from the newest "
                 "observation)"),
    "output_topic": ("", "command topic ('' : policy/<the embodiment's command topic>)"),
    "rt_priority": (0, "SCHED_FIFO priority 1-99 of this process's threads; inference keeps normal priority "
                       "(0: off)"),
    "inference": ("auto", "where the policy runs: process (a child process: no interpreter lock shared "
                          "with the control path), thread (this process), auto (process for a policy "
                          "directory, thread for a named policy or a residual-refined one)"),
    "inline_safety": (False, "filter commands in this process (limits.* parameters) and publish on the robot's "
                             "own topic; run safety_node with mode: monitor for the watchdog and e-stop"),
    "require_monitor": (True, "inline_safety: send nothing until the monitor's safety/state is heard"),
    "prepare": (False, "let a policy with a prepare step (the residual: its base's next chunk) do it between "
                       "commands instead of on the next command's path; that plans the base one step early "
                       "(PandaLift residual 20/30 with it, 21/30 without; QuadHover 1/8 against 4/8)"),
    "act_in_callback": (True, "a policy whose chunks are one action long (the residual) is answered in the "
                              "observation callback, not handed to the inference worker and back"),
    "wait_for_listener": (True, "take observations only once the command topic has a subscriber (the safety "
                                "node or the robot): a robot that waits for its subscribers then starts no "
                                "episode while discovery still drops its commands"),
    "max_image_age": (0.1, "a pixel policy's images: the largest distance (s) between a frame's header stamp and "
                           "the observation's it is paired with; without such a frame no command goes out"),
    "gc_freeze": (True, "after start-up, move every live object to the collector's permanent generation (full "
                        "collections then do not rescan the imported modules and the policy)"),
}
"""The node's parameters (name -> default, description), besides the inline filter's ``limits.*``."""


class PolicyNode(Node):
    """The policy node; see the module docstring.

    Args:
        embodiment: the robot's embodiment (None: the task's, from ``EMBODIMENTS``).
        **kwargs: passed to ``Node`` (``context``, ``parameter_overrides``...).
    """

    def __init__(self, embodiment: Embodiment | None = None, **kwargs: Any) -> None:
        super().__init__("policy", **kwargs)
        p = self.p = declare_parameters(self, PARAMETERS)
        self.embodiment = embodiment or embodiment_for(p["env_id"])
        self.adapter = self.embodiment.make_adapter(p["env_id"])
        self.policy, self.remote = self._load_policy()
        shapes = dict(getattr(self.policy, "shapes", None) or {})
        self.input_keys: list[str] | None = [k for k in shapes if not k.startswith("pixels/")] if shapes else None
        """The state keys fed to the policy (None: every key of the observation, a policy that does not say)."""
        sizes = pixel_shapes(shapes)
        self.cameras = CameraInputs(sizes, float(p["max_image_age"])) if sizes else None
        """The camera frames of a pixel policy (None: it reads no images)."""
        self.blind = False
        """The newest observation found no fresh image: nothing is sent until one does."""
        replan_every = int(p["replan_every"])
        reserve = bool(p["reserve"]) and hasattr(self.policy, "predict_ahead")
        if reserve:  # chunks carry the whole predicted horizon; Ta of them are executed, the rest kept in reserve
            replan_every = replan_every or int(self.policy.predict_ahead())
        if "torch" in sys.modules:  # a torch policy: one intra-op thread; batch-1 inference gains nothing from
            sys.modules["torch"].set_num_threads(1)  # more, and they would compete with the executor for cores
        self.period = 1.0 / float(p["control_hz"]) if p["control_hz"] else float(getattr(self.adapter, "period", 0.05))
        self.guard = (InlineSafety(self, p["env_id"], self.embodiment, self.adapter, bool(p["require_monitor"]))
                      if p["inline_safety"] else None)
        robot_topic = self.embodiment.command_topic
        self.topic = p["output_topic"] or (robot_topic if self.guard is not None else f"policy/{robot_topic}")
        self.cmd_pub = self.create_publisher(self.adapter.msg_type(), self.topic, QoSProfile(depth=1))
        self.act_pub = self.create_publisher(Float64MultiArray, "action", QoSProfile(depth=10))
        self.timing_pub = self.create_publisher(String, "policy/timing", QoSProfile(depth=10))
        self.names = [f"a{i}" for i in range(self.adapter.action_size)]
        self.stats = LoopStats(self.period)
        self.joint_pos: np.ndarray | None = None
        self.obs_time, self.obs_dt, self.obs_count, self.obs_at_pub = 0.0, self.period, 0, 0
        self.intervention, self.starved = False, False
        self.teleop: tuple[np.ndarray, float] | None = None
        self.meta: dict[str, float] | None = None
        gc = self.create_guard_condition(lambda: self.send("chunk"))
        self.runner = PolicyRunner(self.policy, replan_every, on_chunk=gc.trigger, lead=int(p["lead"]),
                                   period=self.period, prepare=bool(p["prepare"]), reserve=reserve)
        if int(p["rt_priority"]) > 0:
            self._realtime(int(p["rt_priority"]))
        self.timer = self.create_timer(self.period, self.on_timer)
        self._subscribe_inputs()
        self.gc_pauses = GcPauses(freeze=bool(p["gc_freeze"]))
        self.get_logger().info(f"policy '{p['policy']}' for {p['env_id']}: commands on '{self.topic}' at "
                               f"{1 / self.period:g} Hz")

    def _load_policy(self) -> tuple[Any, bool]:
        """The policy, and whether it runs in its own process (``inference``)."""
        p = self.p
        spec = (p["policy"], p["env_id"], float(p["noise"]), int(p["seed"]))
        if p["inference"] not in ("auto", "process", "thread"):
            raise ValueError(f"inference must be auto, process or thread, got {p['inference']!r}")
        device = check_device(p["device"])  # spelling here; the process that loads the policy resolves it
        named = p["policy"].split(":")[0] in NAMED_POLICIES
        # auto: a policy directory runs in its own process, except a residual: its one-action chunks are computed
        # on the command path anyway and its act is cheap, so the process round trip costs more than it saves
        # (100 Hz, unanswered observations 125 / 167 in this process against 389 / 364 through the inference
        # process)
        residual = not named and refined_method(p["policy"]) == "residual"
        remote = p["inference"] == "process" or (p["inference"] == "auto" and not named and not residual)
        policy = (RemotePolicy(*spec, prepare=bool(p["prepare"]), device=device) if remote
                  else load_policy(*spec, device=device))
        return policy, remote

    def _realtime(self, priority: int) -> None:
        """SCHED_FIFO for this process's threads.

        A worker that computes chunks in this process stays at normal priority, so a control step preempts it.
        One that only waits on the inference process (remote) runs real-time too: at normal priority the
        inference process could preempt it while it holds the interpreter lock, and the control thread,
        real-time or not, would wait for both (priority inversion through the GIL).
        """
        n = set_realtime(priority, exclude=set() if self.remote else {self.runner.worker_id})
        where = "in a normal-priority process" if self.remote else "worker thread at normal priority"
        self.get_logger().info(f"SCHED_FIFO {priority} on {n} threads; inference {where}")

    def _subscribe_inputs(self) -> None:
        """Observations once commands may go out (a robot that waits for its subscribers, the twin's
        wait_for_subscribers, then starts no episode before its commands can arrive, and, inline, before the
        monitor has been heard); intervention and teleop actions; the timing report."""
        if self.guard is not None:
            self.guard.when_ready(self.when_heard)
        else:
            self.when_heard()
        self.create_subscription(Bool, "intervention", lambda m: setattr(self, "intervention", bool(m.data)),
                                 QoSProfile(depth=1))
        self.create_subscription(Float64MultiArray, "teleop/action", self.on_teleop, QoSProfile(depth=1))
        for camera in self.cameras.sizes if self.cameras is not None else ():
            for msg_type, topic in ((Image, f"image/{camera}"), (CompressedImage, f"image/{camera}/compressed")):
                self.create_subscription(msg_type, topic, lambda m, c=camera: self.cameras.add(c, m),
                                         qos_profile_sensor_data)
        self.create_timer(1.0, self.report)

    def when_heard(self) -> None:
        """Subscribe once the command topic has a subscriber: until DDS discovery has matched it, commands are
        lost (a CI run: the twin's G1 spent its first 0.5 s on the limp fallback and fell)."""
        if not self.p["wait_for_listener"] or self.count_subscribers(self.topic) > 0:
            self.subscribe()
            return

        def poll() -> None:
            if self.count_subscribers(self.topic) > 0:
                self.destroy_timer(listen)
                self.subscribe()

        listen = self.create_timer(0.02, poll)

    def subscribe(self) -> None:
        """Take observations (sensor-data QoS)."""
        self.create_subscription(Float64MultiArray, "observation", self.on_obs, qos_profile_sensor_data)

    def on_obs(self, msg: Any) -> None:
        """An observation: queue it for the policy, and answer it with this period's command."""
        try:
            measured, meta = parse_observation(msg)
            missing = [k for k in self.input_keys or () if k not in measured]
            if missing:
                raise MessageError(f"observation lacks {missing}, which the policy reads; it has {sorted(measured)}")
        except MessageError as err:
            self.get_logger().warning(f"ignored observation: {err}", throttle_duration_sec=1.0)
            return
        obs = measured if self.input_keys is None else {k: measured[k] for k in self.input_keys}
        if self.cameras is not None and not self.see(obs, meta["stamp"]):
            return
        t = time.perf_counter()
        if self.obs_time:
            self.obs_dt += 0.1 * (t - self.obs_time - self.obs_dt)
        self.joint_pos, self.obs_time, self.meta = measured.get("joint_pos"), t, meta
        self.obs_count += 1
        if self.guard is not None:
            self.guard.update(measured)
        self.runner.push(obs, meta, wake=False)  # before this step's pop: a chunk from it skips that action
        self.send("observation")
        if self.p["act_in_callback"] and self.runner.act_now():  # one-action chunks: this observation's action
            self.send("chunk")
        self.runner.wake()  # inference starts after this step's command is out

    def see(self, obs: dict[str, np.ndarray], stamp: float) -> bool:
        """Add the cameras' frames paired with the observation stamped ``stamp`` (s) to ``obs``; False (no
        command this period, the queued actions dropped) when a camera has none fresh enough."""
        frames = self.cameras.pick(stamp)
        if frames is None:
            if not self.blind:
                self.get_logger().warning(f"no image within {self.cameras.max_age:g} s of the observation: no "
                                          f"command until one comes ({self.cameras.summary()})",
                                          throttle_duration_sec=1.0)
            self.blind = True
            self.runner.clear()
            return False
        self.blind = False
        obs.update(frames)
        return True

    def on_timer(self) -> None:
        """Publish on the clock only when observations do not drive the loop (slower than the control
        rate, late, or stopped); otherwise each period's observation triggers its command."""
        t = time.perf_counter()
        if self.obs_dt > 1.25 * self.period or t - self.obs_time > 1.25 * self.period:
            self.send("timer")

    def send(self, source: str) -> None:
        """Publish the next action, once per control period; ``source``: observation, chunk or timer.

        Observations at about the control rate (or slower) get one command each; faster ones, and the
        timer, publish when a period has passed since the last command.
        """
        t, period, stats = time.perf_counter(), self.period, self.stats
        if self.blind or (source == "timer" and self.cameras is not None
                          and self.cameras.newest_age(clock_sec(self)) > self.cameras.max_age + self.period):
            return  # no fresh image: the watchdog's fallback, not actions planned from old frames
        if source == "timer" or self.obs_dt < 0.75 * period:
            gap = 0.75 * period if source == "timer" else period - 0.5 * self.obs_dt
            if stats.last is not None and t - stats.last < gap:
                return
        elif self.obs_count == self.obs_at_pub:
            return  # this observation has its command already
        action = self.runner.pop()
        if action is None:
            self.starved |= source == "observation"  # an observation found the queue empty
            return
        if source != "timer":
            self.timer.reset()  # re-phase the clock on the observation stream
        if stats.last is not None and self.obs_count - self.obs_at_pub >= 2:
            # observations kept coming but no command went out for whole periods
            stats.count_missed(max(0, round((t - stats.last) / period) - 1), starved=self.starved)
        self.obs_at_pub, self.starved = self.obs_count, False
        if self.intervention and self.teleop is not None and t - self.teleop[1] < 0.2:
            action = self.teleop[0]
        self.publish(action, source)

    def publish(self, action: np.ndarray, source: str) -> None:
        """Map ``action`` ``(Da,)`` to the robot's command (through the inline filter) and publish it, with the
        raw action tagged with the observation it answers."""
        now = clock_sec(self)
        try:
            cmd = self.adapter.command(action, self.joint_pos, now)
        except (MessageError, TypeError, ValueError) as err:
            self.get_logger().error(f"could not map the action to a command: {err}", throttle_duration_sec=1.0)
            return
        if self.guard is not None and (cmd := self.guard.check(cmd, now)) is None:
            return  # rejected, or latched: the monitor's fallback holds the robot
        self.cmd_pub.publish(self.adapter.to_msg(cmd))
        self.act_pub.publish(action_msg(action, self.names, self.meta))
        self.stats.published_at(time.perf_counter(), self.obs_time, source)

    def on_teleop(self, msg: Any) -> None:
        """A teleop action ``(Da,)``, swapped in while ``intervention`` is true and it is fresh (0.2 s)."""
        try:
            self.teleop = (parse_action(msg, self.adapter.action_size), time.perf_counter())
        except MessageError as err:
            self.get_logger().warning(f"ignored teleop action: {err}", throttle_duration_sec=1.0)

    def report(self) -> None:
        """``policy/timing``: the loop statistics, inference percentiles (ms), collector passes, inline safety."""
        runner = self.runner
        summary = self.stats.summary()
        if runner.infer_ms:
            summary["inference_p50_ms"] = float(np.percentile(np.asarray(runner.infer_ms), 50))
            summary["inference_p99_ms"] = float(np.percentile(np.asarray(runner.infer_ms), 99))
        if runner.prepare_ms:
            summary["prepare_p50_ms"] = float(np.percentile(np.asarray(runner.prepare_ms), 50))
        summary["dropped_observations"] = runner.dropped
        summary["lead"] = runner.current_lead()
        if runner.reserve:
            summary["reserve_used"] = runner.reserve_used
        summary["gc"] = self.gc_pauses.summary()
        if self.cameras is not None:
            summary["vision"] = self.cameras.summary() | {"inputs": sorted(self.input_keys or []) + self.cameras.keys}
        if self.guard is not None:
            summary["safety"] = self.guard.summary()
        if runner.error:
            summary["error"] = runner.error
            self.get_logger().error(f"policy worker: {runner.error}", throttle_duration_sec=5.0)
        self.timing_pub.publish(String(data=json.dumps(summary)))

    def close(self) -> None:
        """At shutdown: stop timing and the worker, close an inference process, print the loop timing."""
        self.gc_pauses.close()
        self.runner.stop()
        if isinstance(self.policy, RemotePolicy):
            self.policy.close()
        print(f"[policy] loop timing: {json.dumps(self.stats.summary())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    # The executor and the inference worker hand off every control step; CPython's default 5 ms GIL
    # switch interval would add up to that much to the observation-to-command latency.
    sys.setswitchinterval(2e-4)
    return run_node(PolicyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
