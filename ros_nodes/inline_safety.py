"""The safety filter inside the policy node's process (``policy_node`` parameter ``inline_safety``).

With the filter in the policy's own process, a command reaches the robot in one process hop instead of two
(policy → safety gate → robot), which is most of the deployment path's latency above a bare echo node.
What one process cannot do for itself stays in ``safety_node`` running in ``mode: monitor``: the watchdog
(a killed policy process gets the robot a fallback within the timeout) and the e-stop. The monitor's
``safety/state`` topic (transient local) carries the e-stop latch and each reset / re-arm here, and the
filter is fail-closed: until that state has been heard, no command goes out, so a policy node started
while the e-stop is latched never commands the robot before the reset. The e-stop takes one message to
reach this filter: a command sent before it arrived can still reach the robot after the monitor latched
(the monitor counts it as ``command while latched``); the gate blocks that one too.

The filter's robot state comes from the observations the policy already parses (the embodiment's
``state_from_observation``: arm and humanoid ``joint_pos`` in command order; quadrotor ``position``,
``attitude`` wxyz, ``velocity``), not from a second subscription to ``joint_states`` / ``odom`` on the
control path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.ros_nodes.embodiments.base import Adapter, Embodiment
from robolearn.ros_nodes.safety import Command, SafetyFilter

WAITING = "waiting for safety/state"
"""Count key of the commands held back before the monitor's state was heard."""


class InlineSafety:
    """A :class:`SafetyFilter` for one policy node: limits from its ``limits.*`` parameters, the e-stop and
    resets from ``safety/state``.

    Args:
        node: the policy node (parameters, subscription, logger).
        env_id: the task whose robot is guarded (default limits).
        embodiment: the robot's embodiment (defaults, checks, state from observations).
        adapter: the node's robot adapter.
        require_monitor: hold every command until ``safety/state`` has been heard (fail-closed).
    """

    def __init__(self, node: Any, env_id: str, embodiment: Embodiment, adapter: Adapter,
                 require_monitor: bool = True):
        from std_msgs.msg import String

        from robolearn.ros_nodes.safety_params import declare_limits, state_qos

        self.embodiment = embodiment
        self.cfg = declare_limits(node, embodiment.default_safety(env_id, adapter))
        log = node.get_logger()
        self.filter = SafetyFilter(self.cfg, embodiment.safety_checks(self.cfg, adapter),
                                   log=lambda m: log.warning(m, throttle_duration_sec=1.0))
        self.heard = not require_monitor
        self._epoch: int | None = None
        self._on_ready: list[Callable[[], None]] = []
        node.create_subscription(String, "safety/state", self._on_state, state_qos())

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once commands may go out: now, or when ``safety/state`` is first heard."""
        if self.heard:
            callback()
        else:
            self._on_ready.append(callback)

    def update(self, obs: dict[str, np.ndarray]) -> None:
        """The robot state from an observation (see the module docstring for the keys)."""
        self.filter.update_state(**self.embodiment.state_from_observation(obs))

    def check(self, cmd: Command, now: float) -> Command | None:
        """The command to publish for ``cmd`` at ``now`` (s), clipped into the limits; None: hold it back."""
        if not self.heard:
            self.filter.counts[WAITING] += 1
            return None
        return self.filter.filter(cmd, now).command

    def _on_state(self, msg: Any) -> None:
        try:
            state = json.loads(msg.data)
            estopped, epoch, cleared = bool(state["estopped"]), int(state["epoch"]), str(state.get("cleared", ""))
        except (ValueError, KeyError, TypeError):
            self.filter.counts["malformed safety/state"] += 1
            return
        if self._epoch is not None and epoch != self._epoch:
            if cleared == "reset":
                self.filter.reset()
            elif cleared == "rearm":
                self.filter.rearm()
        if estopped and not self.filter.estopped:
            self.filter.estop("safety node")
        self._epoch, self.heard = epoch, True
        while self._on_ready:
            self._on_ready.pop(0)()

    def summary(self) -> dict[str, Any]:
        """Counts by reason and the latches, for the policy node's timing report."""
        f = self.filter
        return {"counts": dict(f.counts), "estopped": f.estopped, "tripped": f.trip_reason, "heard": self.heard}
