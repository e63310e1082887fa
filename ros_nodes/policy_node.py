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

The policy is a named one (``expert``, ``random``, ``zero``; :func:`robolearn.policy_factory.make_policy`)
or a policy directory (:func:`robolearn.policies.checkpoint.load`). Actions go through the embodiment's
adapter and are published on ``output_topic`` (default ``policy/<command topic>``, which the safety node
filters onto the robot's topic), plus the raw action on ``action`` and timing statistics as JSON on
``policy/timing`` every second (command period mean/std/max in ms, missed periods, inference and
observation-to-command latency percentiles in ms). While ``intervention`` (``std_msgs/Bool``) is true,
a fresh ``teleop/action`` replaces the policy's action (human in the loop). With ``inline_safety`` the
safety filter runs in this process and commands go straight to the robot's topic
(:mod:`robolearn.ros_nodes.inline_safety`; ``safety_node`` then runs as a monitor), and the node subscribes to
observations only once the monitor has been heard. Each ``action`` carries the ``_stamp`` / ``_episode`` /
``_step`` of the observation it answers.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from robolearn.policy_factory import NAMED_POLICIES
from robolearn.refine.layout import refined_method
from robolearn.ros_nodes.adapters import COMMAND_TOPICS, make_adapter
from robolearn.ros_nodes.convert import MessageError, action_msg, clock_sec, parse_action, parse_observation
from robolearn.ros_nodes.inline_safety import InlineSafety
from robolearn.ros_nodes.policy_runner import LoopStats, PolicyRunner
from robolearn.ros_nodes.remote_policy import RemotePolicy, load_policy
from robolearn.ros_nodes.rosenv import GcPauses, require_rclpy, set_realtime, shutdown_node, spin_until_shutdown


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
        "gc_freeze": (True, "after start-up, move every live object to the collector's permanent generation (full "
                            "collections then do not rescan the imported modules and the policy)"),
    }
    p = {k: node.declare_parameter(k, v, ParameterDescriptor(description=d, dynamic_typing=True)).value
         for k, (v, d) in defaults.items()}
    log = node.get_logger()
    adapter = make_adapter(p["env_id"])
    spec = (p["policy"], p["env_id"], float(p["noise"]), int(p["seed"]))
    if p["inference"] not in ("auto", "process", "thread"):
        raise ValueError(f"inference must be auto, process or thread, got {p['inference']!r}")
    named = p["policy"].split(":")[0] in NAMED_POLICIES
    # auto: a policy directory runs in its own process, except a residual: its one-action chunks are computed on
    # the command path anyway and its act is cheap, so the process round trip costs more than it saves (100 Hz,
    # unanswered observations 125 / 167 in this process against 389 / 364 through the inference process)
    residual = not named and refined_method(p["policy"]) == "residual"
    remote = p["inference"] == "process" or (p["inference"] == "auto" and not named and not residual)
    policy = RemotePolicy(*spec, prepare=bool(p["prepare"])) if remote else load_policy(*spec)
    replan_every, reserve = int(p["replan_every"]), bool(p["reserve"]) and hasattr(policy, "predict_ahead")
    if reserve:  # chunks carry the whole predicted horizon; Ta of them are executed, the rest kept in reserve
        replan_every = replan_every or int(policy.predict_ahead())
    if "torch" in sys.modules:  # a torch policy: one intra-op thread; batch-1 inference gains nothing from
        sys.modules["torch"].set_num_threads(1)  # more, and they would compete with the executor for cores
    period = 1.0 / float(p["control_hz"]) if p["control_hz"] else float(getattr(adapter, "period", 0.05))
    guard = InlineSafety(node, p["env_id"], adapter, bool(p["require_monitor"])) if p["inline_safety"] else None
    robot_topic = COMMAND_TOPICS[adapter.embodiment]
    topic = p["output_topic"] or (robot_topic if guard is not None else f"policy/{robot_topic}")
    cmd_pub = node.create_publisher(adapter.msg_type(), topic, QoSProfile(depth=1))
    act_pub = node.create_publisher(Float64MultiArray, "action", QoSProfile(depth=10))
    timing_pub = node.create_publisher(String, "policy/timing", QoSProfile(depth=10))
    names = [f"a{i}" for i in range(adapter.action_size)]
    stats = LoopStats(period)
    state: dict[str, Any] = {"joint_pos": None, "obs_time": 0.0, "obs_dt": period, "obs_count": 0, "obs_at_pub": 0,
                             "intervention": False, "teleop": None, "meta": None, "starved": False}
    gc = node.create_guard_condition(lambda: send("chunk"))
    runner = PolicyRunner(policy, replan_every, on_chunk=gc.trigger, lead=int(p["lead"]), period=period,
                          prepare=bool(p["prepare"]), reserve=reserve)
    if int(p["rt_priority"]) > 0:
        # A worker that computes chunks in this process stays at normal priority, so a control step preempts
        # it. One that only waits on the inference process (remote) runs real-time too: at normal priority
        # the inference process could preempt it while it holds the interpreter lock, and the control
        # thread, real-time or not, would wait for both (priority inversion through the GIL).
        n = set_realtime(int(p["rt_priority"]), exclude=set() if remote else {runner.worker_id})
        log.info(f"SCHED_FIFO {p['rt_priority']} on {n} threads; inference "
                 + ("in a normal-priority process" if remote else "worker thread at normal priority"))

    def on_obs(msg: Any) -> None:
        try:
            obs, meta = parse_observation(msg)
        except MessageError as err:
            log.warning(f"ignored observation: {err}", throttle_duration_sec=1.0)
            return
        t = time.perf_counter()
        if state["obs_time"]:
            state["obs_dt"] += 0.1 * (t - state["obs_time"] - state["obs_dt"])
        state["joint_pos"], state["obs_time"], state["meta"] = obs.get("joint_pos"), t, meta
        state["obs_count"] += 1
        if guard is not None:
            guard.update(obs)
        runner.push(obs, meta, wake=False)  # before this step's pop: a chunk from it skips that action
        send("observation")
        if p["act_in_callback"] and runner.act_now():  # one-action chunks: this observation's action, here
            send("chunk")
        runner.wake()  # inference starts after this step's command is out

    def on_timer() -> None:
        """Publish on the clock only when observations do not drive the loop (slower than the control
        rate, late, or stopped); otherwise each period's observation triggers its command."""
        t = time.perf_counter()
        if state["obs_dt"] > 1.25 * period or t - state["obs_time"] > 1.25 * period:
            send("timer")

    def send(source: str) -> None:
        """Publish the next action, once per control period; ``source``: observation, chunk or timer.

        Observations at about the control rate (or slower) get one command each; faster ones, and the
        timer, publish when a period has passed since the last command.
        """
        t = time.perf_counter()
        if source == "timer" or state["obs_dt"] < 0.75 * period:
            gap = 0.75 * period if source == "timer" else period - 0.5 * state["obs_dt"]
            if stats.last is not None and t - stats.last < gap:
                return
        elif state["obs_count"] == state["obs_at_pub"]:
            return  # this observation has its command already
        action = runner.pop()
        if action is None:
            state["starved"] |= source == "observation"  # an observation found the queue empty
            return
        if source != "timer":
            timer.reset()  # re-phase the clock on the observation stream
        if stats.last is not None and state["obs_count"] - state["obs_at_pub"] >= 2:
            # observations kept coming but no command went out for whole periods
            stats.count_missed(max(0, round((t - stats.last) / period) - 1), starved=state["starved"])
        state["obs_at_pub"], state["starved"] = state["obs_count"], False
        teleop = state["teleop"]
        if state["intervention"] and teleop is not None and t - teleop[1] < 0.2:
            action = teleop[0]
        now = clock_sec(node)
        try:
            cmd = adapter.command(action, state["joint_pos"], now)
        except (MessageError, TypeError, ValueError) as err:
            log.error(f"could not map the action to a command: {err}", throttle_duration_sec=1.0)
            return
        if guard is not None and (cmd := guard.check(cmd, now)) is None:
            return  # rejected, or latched: the monitor's fallback holds the robot
        cmd_pub.publish(adapter.to_msg(cmd))
        act_pub.publish(action_msg(action, names, state["meta"]))  # tagged with the observation it answers
        stats.published_at(time.perf_counter(), state["obs_time"], source)

    def on_teleop(msg: Any) -> None:
        try:
            state["teleop"] = (parse_action(msg, adapter.action_size), time.perf_counter())
        except MessageError as err:
            log.warning(f"ignored teleop action: {err}", throttle_duration_sec=1.0)

    def report() -> None:
        summary = stats.summary()
        if runner.infer_ms:
            summary["inference_p50_ms"] = float(np.percentile(np.asarray(runner.infer_ms), 50))
            summary["inference_p99_ms"] = float(np.percentile(np.asarray(runner.infer_ms), 99))
        if runner.prepare_ms:
            summary["prepare_p50_ms"] = float(np.percentile(np.asarray(runner.prepare_ms), 50))
        summary["dropped_observations"] = runner.dropped
        summary["lead"] = runner.current_lead()
        if runner.reserve:
            summary["reserve_used"] = runner.reserve_used
        summary["gc"] = gc_pauses.summary()
        if guard is not None:
            summary["safety"] = guard.summary()
        if runner.error:
            summary["error"] = runner.error
            log.error(f"policy worker: {runner.error}", throttle_duration_sec=5.0)
        timing_pub.publish(String(data=json.dumps(summary)))

    timer = node.create_timer(period, on_timer)

    def subscribe() -> None:
        node.create_subscription(Float64MultiArray, "observation", on_obs, qos_profile_sensor_data)

    def when_heard() -> None:
        """Subscribe once the command topic has a subscriber: until DDS discovery has matched it, commands are
        lost (a CI run: the twin's G1 spent its first 0.5 s on the limp fallback and fell)."""
        if not p["wait_for_listener"] or node.count_subscribers(topic) > 0:
            subscribe()
            return

        def poll() -> None:
            if node.count_subscribers(topic) > 0:
                node.destroy_timer(listen)
                subscribe()

        listen = node.create_timer(0.02, poll)

    # Observations are taken once commands may go out: a robot that waits for its subscribers (the twin's
    # wait_for_subscribers) then starts no episode before its commands can arrive (and, inline, before the
    # monitor has been heard).
    if guard is not None:
        guard.when_ready(when_heard)
    else:
        when_heard()
    node.create_subscription(Bool, "intervention", lambda m: state.update(intervention=bool(m.data)),
                             QoSProfile(depth=1))
    node.create_subscription(Float64MultiArray, "teleop/action", on_teleop, QoSProfile(depth=1))
    node.create_timer(1.0, report)
    gc_pauses = GcPauses(freeze=bool(p["gc_freeze"]))
    log.info(f"policy '{p['policy']}' for {p['env_id']}: commands on '{topic}' at {1 / period:g} Hz")
    try:
        spin_until_shutdown(node)
    finally:
        gc_pauses.close()
        runner.stop()
        if isinstance(policy, RemotePolicy):
            policy.close()
        print(f"[policy] loop timing: {json.dumps(stats.summary())}", file=sys.stderr)
        shutdown_node(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
