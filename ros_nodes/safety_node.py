"""``safety_node``: the :class:`~robolearn.ros_nodes.safety.SafetyFilter` between the policy and the robot.

A lifecycle node (configure / activate / deactivate; ``autostart`` runs both transitions at start-up).

Subscribes: ``policy/<command topic>`` (the adapter's command message from the policy),
``joint_states`` (arm, humanoid) or ``odom`` (``nav_msgs/Odometry``, quadrotor) for the measured state,
``estop`` (``std_msgs/Bool``; true latches the e-stop). Publishes: the robot's command topic
(``joint_trajectory`` / ``joint_command`` / ``rates_setpoint``; reliable, keep-last 1) and
``safety/status`` (``std_msgs/String`` JSON: counts by reason, ``fallback``, ``estopped``, ``tripped``).
Services (``std_srvs/Trigger``): ``~/estop``; ``~/reset`` (clears the e-stop and any trip); ``~/rearm``
(clears a state-limit trip only: the sim twin calls it when it starts an episode). The watchdog runs at ``tick_hz``; a
quadrotor's last accepted setpoint is re-sent at ``stream_hz`` (PX4 offboard needs a continuous stream).

The watchdog holds under load: it runs in a thread of its own (``watchdog_thread``), not as an executor timer,
that wakes when the last accepted command becomes ``watchdog_timeout`` old (and at ``tick_hz`` while the
fallback runs or setpoints stream), under ``SCHED_FIFO`` at ``watchdog_priority`` when the system permits
(else a warning and normal scheduling), with the interpreter's switch interval at 1 ms so that it gets the
GIL at once. A fallback thus reaches the robot within the timeout plus a fraction of a millisecond of the
last command, not up to a tick later, nor when the executor gets a core back. ``rt_priority`` (off by
default) puts every thread of the process under ``SCHED_FIFO``.

Limits are the :class:`~robolearn.ros_nodes.safety.SafetyConfig` fields as parameters; unset ones
default to the task's model (the embodiment's ``default_safety``). Everything per embodiment (command topic
and message, state topic, checks and fallback, setpoint streaming) comes from the task's embodiment
(:mod:`robolearn.ros_nodes.embodiments`).

``mode``: ``gate`` (default) filters ``policy/<command topic>`` onto the robot's topic, the only path to
the robot, one process hop. ``monitor`` serves a policy node that filters its own commands
(``inline_safety``, :mod:`robolearn.ros_nodes.inline_safety`) and publishes on the robot's topic itself:
the monitor watches that topic, runs the watchdog and the fallback (a killed policy process still gets
the robot a fallback within the timeout) and owns the e-stop, which reaches the inline filter on
``safety/state`` (``std_msgs/String`` JSON ``{"estopped", "epoch", "cleared"}``, reliable, transient
local, so a policy node started later hears it at once; published in both modes). A monitor cannot block
a process that ignores the e-stop: it counts each such command (``command while latched``). A quadrotor's
setpoint stream is the gate's to keep up; under a monitor the policy node streams its own.

Only the safety layer commands the robot: in both modes the node watches the robot's command topics (the
embodiment's ``command_topic`` and the twin's further inputs, e.g. ``forward_position``) and its own
``safety/state`` at ``watch_hz``
(:class:`~robolearn.ros_nodes.graph_watch.PublisherWatch`). A publisher there other than this node (or, in
monitor mode, the inline-filtering policy node, ``allowed_publishers``) is logged, counted (``unknown
publisher``), listed in ``safety/status`` (``intruders``) and latches the e-stop. ``~/reset`` is refused
(``success: false``, counted ``reset refused``) while such a publisher is on those topics: stop it first.
Without DDS Security (not in the PyPI wheels: ``ros_nodes/README.md``, *Security*) a node's name is its only
identity, so this check finds a careless or rogue publisher, not one that copies the allowed policy node's name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from collections import deque
from typing import Any

from robolearn.ros_nodes.convert import clock_sec
from robolearn.ros_nodes.embodiments import embodiment_for
from robolearn.ros_nodes.embodiments.base import Embodiment
from robolearn.ros_nodes.graph_watch import PublisherWatch
from robolearn.ros_nodes.rosenv import declare_parameters, require_rclpy, run_node, set_realtime
from robolearn.ros_nodes.safety import Command, SafetyFilter
from robolearn.ros_nodes.safety_params import declare_limits, state_qos

require_rclpy()
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn  # noqa: E402

PARAMETERS = {
    "env_id": ("robolearn/PandaLift-v0", "registered task whose robot this guards"),
    "autostart": (True, "configure and activate at start-up"),
    "tick_hz": (100.0, "watchdog / fallback rate, Hz"),
    "stream_hz": (50.0, "quadrotor: re-send the last setpoint at this rate, Hz"),
    "input_topic": ("", "commands from the policy ('' : policy/<command topic>)"),
    "rt_priority": (0, "SCHED_FIFO priority 1-99 of the node's threads (0: off)"),
    "watchdog_thread": (True, "run the watchdog in a thread of its own that wakes at the deadline (false: an "
                              "executor timer at tick_hz)"),
    "watchdog_priority": (50, "SCHED_FIFO priority 1-99 of the watchdog thread when permitted (0: normal "
                              "scheduling)"),
    "mode": ("gate", "gate: filter policy/<command topic> onto the robot's topic; monitor: watch the "
                     "robot's topic, which an inline-filtering policy node publishes (watchdog, "
                     "fallback and e-stop only)"),
    "watch_hz": (5.0, "rate of the check for unknown publishers on the robot's command topics, Hz (0: off)"),
    "allowed_publishers": ("", "fully qualified names of the nodes besides this one allowed to publish on the "
                               "robot's command topics, comma-separated ('' : the policy node of this namespace in "
                               "monitor mode, none in gate mode)"),
}
"""The node's parameters (name -> default, description), besides the ``limits.*`` ones."""


class SafetyNode(LifecycleNode):
    """The filter as a lifecycle node; see the module docstring.

    Args:
        embodiment: the robot's embodiment (None: the task's, from ``EMBODIMENTS``).
        **kwargs: passed to ``LifecycleNode`` (``context``, ``parameter_overrides``...).
    """

    def __init__(self, embodiment: Embodiment | None = None, **kwargs: Any) -> None:
        super().__init__("safety", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        if int(self.p["rt_priority"]) > 0:
            set_realtime(int(self.p["rt_priority"]))
        env_id = self.p["env_id"]
        self.embodiment = embodiment or embodiment_for(env_id)
        self.adapter = self.embodiment.make_adapter(env_id)
        self.cfg = declare_limits(self, self.embodiment.default_safety(env_id, self.adapter))
        self.checks = self.embodiment.safety_checks(self.cfg, self.adapter)  # validates the limits now
        self.mode = self.p["mode"]
        if self.mode not in ("gate", "monitor"):
            raise ValueError(f"mode must be gate or monitor, got {self.mode!r}")
        self.filter: SafetyFilter | None = None
        self.active = False
        self.epoch, self.cleared = 0, ""
        self._own_stamps: deque[tuple[int, int]] = deque(maxlen=64)
        """Header stamps of the messages this node sent (monitor mode: not the policy's commands)."""
        self._last_sent: Command | None = None
        self._last_sent_time = 0.0
        self._lock = threading.RLock()
        """Held around the filter and the robot's publisher: the executor and the watchdog thread share them."""
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.watch: PublisherWatch | None = None
        self.intruders: list[str] = []
        """Unknown publishers on the robot's command topics at the last check (``"<node> on <topic>"``)."""
        self._intruder_gids: set[str] = set()
        if self.p["autostart"]:
            self.trigger_configure()
            self.trigger_activate()

    def now(self) -> float:
        """The node's ROS clock (s)."""
        return clock_sec(self)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """The filter, the robot's command publisher, status/state publishers, inputs, services and timers."""
        from rclpy.qos import QoSProfile
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        self.filter = SafetyFilter(self.cfg, self.checks, log=lambda m: self.get_logger().warning(m))
        topic, msg_type = self.embodiment.command_topic, self.adapter.msg_type()
        self.out = self.create_lifecycle_publisher(msg_type, topic, QoSProfile(depth=1))
        self.status = self.create_publisher(String, "safety/status", QoSProfile(depth=10))
        self.state_pub = self.create_publisher(String, "safety/state", state_qos())
        if self.mode == "monitor":
            self.create_subscription(msg_type, topic, self.on_observed, QoSProfile(depth=10))
        else:
            src = self.p["input_topic"] or f"policy/{topic}"
            self.create_subscription(msg_type, src, self.on_command, QoSProfile(depth=1))
        self.embodiment.subscribe_state(self, self.adapter, self.update_state)
        self.create_subscription(Bool, "estop", lambda m: m.data and self.latch("estop topic"), QoSProfile(depth=10))
        self.create_service(Trigger, "~/estop", self.on_estop)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.create_service(Trigger, "~/rearm", self.on_rearm)
        if self.p["watchdog_thread"]:
            self._watchdog = threading.Thread(target=self.watchdog_loop, name="safety_watchdog", daemon=True)
            self._watchdog.start()
        else:
            self.create_timer(1.0 / float(self.p["tick_hz"]), self.tick)
        self.create_timer(0.5, self.publish_status)
        self.watch = PublisherWatch(self, [topic, *self.embodiment.twin_inputs(self.adapter), "safety/state"],
                                    self.allowed_publishers())
        if float(self.p["watch_hz"]) > 0:
            self.create_timer(1.0 / float(self.p["watch_hz"]), self.check_publishers)
        self.publish_state()
        return TransitionCallbackReturn.SUCCESS

    def watchdog_loop(self) -> None:
        """The watchdog thread: :meth:`tick` at ``tick_hz`` and at each watchdog deadline, until
        :meth:`destroy_node`."""
        priority = int(self.p["watchdog_priority"])
        if priority > 0:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            except (PermissionError, AttributeError) as err:
                self.get_logger().warning(f"watchdog thread without SCHED_FIFO ({err}); it may be late under load")
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        period = 1.0 / float(self.p["tick_hz"])
        next_tick = time.monotonic()
        try:
            while not self._stop.wait(self.sleep_time(next_tick)):
                if time.monotonic() >= next_tick:
                    next_tick = max(next_tick + period, time.monotonic())
                self.tick()
        except Exception as err:  # a publish racing the shutdown ends the thread, not the process
            if not self._stop.is_set() and self.context.ok():  # not a shutdown (the context goes first on SIGINT)
                self.get_logger().error(f"watchdog thread stopped: {err!r}")

    def sleep_time(self, next_tick: float) -> float:
        """Seconds to sleep: while commands flow, until just past the moment the last one turns
        ``watchdog_timeout`` old (no wake-ups between: they would take the GIL from the executor); while the
        fallback runs (or the gate streams setpoints), until the next tick (``next_tick``, monotonic s)."""
        wait = next_tick - time.monotonic()
        if self.filter is not None and self.active:
            due = self.filter.time_to_fallback(self.now())
            streams = self.mode == "gate" and self.embodiment.streams_setpoints
            if due is not None:
                wait = min(wait, due + 2e-4) if streams or self.filter.latched else due + 2e-4
        return max(0.0, wait)

    def destroy_node(self) -> None:
        """Stop the watchdog thread, then destroy the node."""
        self._stop.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=1.0)
        super().destroy_node()

    def allowed_publishers(self) -> list[str]:
        """The ``allowed_publishers`` parameter, or its default for the mode (see ``PARAMETERS``)."""
        names = [n.strip() for n in str(self.p["allowed_publishers"]).split(",") if n.strip()]
        if not names and self.mode == "monitor":
            names = [f"{self.get_namespace().rstrip('/')}/policy"]
        return names

    def check_publishers(self) -> list[str]:
        """Find unknown publishers on the robot's command topics; a new one (by endpoint GID) is reported,
        counted and latches the e-stop. Returns the current ones, ``"<node> on <topic>"``."""
        if self.watch is None:
            return []
        found = self.watch.unknown()
        new = [gid for gid in found if gid not in self._intruder_gids]
        self._intruder_gids = set(found)
        self.intruders = sorted(found.values())
        for gid in new:
            self.get_logger().error(f"unknown publisher on the robot's command topics: {found[gid]} (gid {gid})")
            self.filter.counts["unknown publisher"] += 1
        if new and self.active:
            self.latch(f"unknown publisher {found[new[0]]}")
        return self.intruders

    def update_state(self, **measured: Any) -> None:
        """The robot's measured state to the filter (which may trip on a state limit)."""
        with self._lock:
            self.filter.update_state(**measured)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        return super().on_deactivate(state)

    def parse(self, msg: Any, where: str) -> Command | None:
        """The command in ``msg``, or None (inactive, or malformed: counted and logged)."""
        if self.filter is None or not self.active:
            return None
        try:
            return self.adapter.from_msg(msg)
        except ValueError as err:
            self.filter.counts["malformed"] += 1
            self.get_logger().warning(f"malformed command {where}: {err}")
            return None

    def on_command(self, msg: Any) -> None:
        """Gate mode: a policy command, filtered onto the robot's topic."""
        cmd = self.parse(msg, "rejected")
        if cmd is None:
            return
        with self._lock:
            verdict = self.filter.filter(cmd, self.now())
            if verdict.command is not None:
                self.send(verdict.command)

    def send(self, cmd: Command) -> None:
        """Publish ``cmd`` on the robot's topic (remembering its stamp and the time, for streaming)."""
        self._last_sent, self._last_sent_time = cmd, self.now()
        msg = self.adapter.to_msg(cmd)
        self._own_stamps.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        self.out.publish(msg)

    def on_observed(self, msg: Any) -> None:
        """Monitor mode: a command on the robot's topic; the policy's (not this node's fallback) feed the
        watchdog."""
        if (msg.header.stamp.sec, msg.header.stamp.nanosec) in self._own_stamps:
            return
        cmd = self.parse(msg, "on the robot's topic")
        if cmd is not None:
            with self._lock:
                self.filter.observe(cmd, self.now())

    def tick(self) -> None:
        """The watchdog: the fallback while commands are missing or latched; a gate streaming setpoints
        re-sends the last one at ``stream_hz``."""
        if self.filter is None or not self.active:
            return
        with self._lock:
            now = self.now()
            fallback = self.filter.tick(now)
            if fallback is not None:
                self.send(fallback)
            elif (self.mode == "gate" and self.embodiment.streams_setpoints and self._last_sent is not None
                  and now - self._last_sent_time > 1.0 / self.p["stream_hz"]):
                # a monitor's last message is a fallback setpoint: streaming it would fight the policy's own
                self.send(dataclasses.replace(self._last_sent, stamp=now))

    def latch(self, source: str) -> None:
        """Latch the e-stop and tell the graph at once."""
        with self._lock:
            self.filter.estop(source)
        self.publish_state()
        self.publish_status()

    def on_estop(self, request: Any, response: Any) -> Any:
        self.latch("service")
        response.success, response.message = True, "e-stop latched"
        return response

    def on_reset(self, request: Any, response: Any) -> Any:
        """Clear the e-stop and any trip, unless an unknown publisher is on the robot's command topics."""
        intruders = self.check_publishers()
        if intruders:
            self.filter.counts["reset refused"] += 1
            response.success = False
            response.message = f"reset refused: unknown publisher(s) {'; '.join(intruders)}; stop them first"
            self.get_logger().error(response.message)
            self.publish_status()
            return response
        with self._lock:
            self.filter.reset()
        self.publish_state(cleared="reset")
        response.success, response.message = True, "reset"
        self.publish_status()
        return response

    def on_rearm(self, request: Any, response: Any) -> Any:
        with self._lock:
            reason = self.filter.rearm()
        self.publish_state(cleared="rearm")
        response.success = True
        response.message = ("not tripped" if reason is None else f"re-armed after: {reason}") + (
            "; the e-stop stays latched" if self.filter.estopped else "")
        self.publish_status()
        return response

    def publish_state(self, cleared: str = "") -> None:
        """``safety/state``: the e-stop latch, and a counter of resets / re-arms (``epoch``) with the last
        one's kind, for inline filters to follow; ``cleared`` (reset, rearm) counts one more."""
        from std_msgs.msg import String

        if cleared:
            self.epoch, self.cleared = self.epoch + 1, cleared
        self.state_pub.publish(String(data=json.dumps(
            {"estopped": self.filter.estopped, "epoch": self.epoch, "cleared": self.cleared})))

    def publish_status(self) -> None:
        """``safety/status``: counts by reason and the latches, as JSON."""
        from std_msgs.msg import String

        f = self.filter
        self.status.publish(String(data=json.dumps({
            "counts": dict(f.counts), "fallback": f.fallback_active, "estopped": f.estopped,
            "tripped": f.trip_reason, "active": self.active, "mode": self.mode, "intruders": self.intruders})))

    def close(self) -> None:
        """At shutdown: the counts by reason, on stderr."""
        if self.filter is not None:
            print(f"[safety] counts: {dict(self.filter.counts)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_node(SafetyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
