"""The robot side of the safety contract: what a driver accepts, whoever sends it, and the e-stop it holds.

The safety node is the only intended sender on the robot's command topics, but on a plain DDS graph any
participant may publish there. :class:`CommandGuard` is what the MuJoCo twin (and, by the contract in
``ros_nodes/README.md``, a real robot's driver) runs on every command before it reaches the actuators:

* it refuses a command that does not fit the robot (the embodiment's
  :class:`~robolearn.ros_nodes.embodiments.base.CommandBounds`: length, finite values and gains, each value
  within the robot's physical range), counted by reason in :attr:`CommandGuard.counts`;
* while the e-stop is latched it refuses every command (``e-stop latched``) and holds the embodiment's own
  fallback (arm: the measured joints with the last accepted gripper closure; humanoid: damping; quadrotor:
  hover, then land), so a publisher that ignores the e-stop cannot move the robot.

Pure Python, no ROS: the twin node feeds it the latch (``safety/state``, ``estop``) and the observations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from robolearn.ros_nodes.embodiments.base import Adapter, CommandBounds, Embodiment
from robolearn.ros_nodes.safety import Command, RobotState


class CommandGuard:
    """Validates commands for one robot and holds its fallback while the e-stop is latched.

    Args:
        embodiment: the robot's embodiment (bounds, fallback, state from observations).
        adapter: its adapter for the task.
        env_id: the registered task (the bounds and the fallback's defaults come from its model).
        log: called with a message for the first refusal of each reason and every 100th after it.
    """

    def __init__(self, embodiment: Embodiment, adapter: Adapter, env_id: str,
                 log: Callable[[str], None] | None = None):
        self.embodiment = embodiment
        self.bounds: CommandBounds = embodiment.command_bounds(env_id, adapter)
        self.checks = embodiment.safety_checks(embodiment.default_safety(env_id, adapter), adapter)
        self.log = log or (lambda message: None)
        self.counts: Counter[str] = Counter()
        """Refused commands by reason (``e-stop latched``, ``NaN or inf``, ``outside the joint limits``...)."""
        self.accepted = 0
        """Commands that passed."""
        self.estopped = False
        self._since: float | None = None
        """Time (s) the held fallback started (None: not holding)."""

    def refuse(self, reason: str, detail: str = "") -> None:
        """Count a refused command under ``reason``, and log it (with ``detail``) the first time and every 100th."""
        self.counts[reason] += 1
        n = self.counts[reason]
        if n == 1 or n % 100 == 0:
            self.log(f"refused command: {reason}{f' ({detail})' if detail else ''}; {n} so far")

    def admit(self, cmd: Command) -> bool:
        """Whether ``cmd`` may reach the actuators (a refusal is counted)."""
        return self.admit_all([cmd])

    def admit_all(self, cmds: Sequence[Command]) -> bool:
        """Whether every command of a trajectory may reach the actuators: one acceptance, or the first refusal
        counted (a linear interpolation between admitted commands stays within the bounds, a box)."""
        if self.estopped:
            self.refuse("e-stop latched")
            return False
        for cmd in cmds:
            reason = self.bounds.check(cmd)
            if reason is not None:
                self.refuse(reason)
                return False
        self.accepted += 1
        self.checks.observed(np.asarray(cmds[-1].values, np.float64).reshape(-1))
        return True

    def latch(self) -> None:
        """Latch the e-stop: every command is refused until :meth:`clear`."""
        if not self.estopped:
            self.log("e-stop latched: holding the fallback, refusing every command")
        self.estopped = True

    def clear(self) -> None:
        """Clear the e-stop (the safety node's reset); commands are accepted again."""
        if self.estopped:
            self.log("e-stop cleared")
        self.estopped, self._since = False, None
        self.checks.forget()

    def restart(self) -> None:
        """The robot was re-placed (a new episode): a latched fallback starts again from the new state."""
        self._since = None

    def fallback(self, obs: dict[str, np.ndarray], now: float) -> Command | None:
        """While latched: the embodiment's safe command at ``now`` (s) for observation ``obs`` (None: not
        latched, or the state is not known yet)."""
        if not self.estopped:
            return None
        fields: dict[str, Any] = {k: v for k, v in self.embodiment.state_from_observation(obs).items()
                                  if v is not None}
        state = RobotState(**fields)
        if self._since is None:
            self._since = now
            self.checks.start_fallback(state)
        return self.checks.fallback(state, now, self._since)

    def summary(self) -> dict[str, Any]:
        """Counts for a status message: accepted, refused by reason, the latch."""
        return {"accepted": self.accepted, "refused": dict(self.counts), "estopped": self.estopped}
