"""The MuJoCo twin's physics: a registered task as a :class:`~robolearn.core.protocols.Robot`, without ROS.

:class:`SimRobot` is what ``sim_robot_node`` steps, and the shape a real robot's driver takes: ``info``
(features and control rate), ``get_observation()``, ``send_action(action)``. The node drives it with
commands (``apply``, what arrives on the command topic after the safety filter); ``send_action`` maps an
env action through the embodiment's adapter to the same command. Its clock is the simulation's:
:meth:`SimRobot.step` advances one control period, which a real robot's clock does by itself.

Like a real driver it trusts no sender: every command passes its
:class:`~robolearn.ros_nodes.command_guard.CommandGuard` (length, finite values, physical ranges; refusals
counted), and while the e-stop is latched (:meth:`SimRobot.estop`) it refuses every command and holds the
embodiment's fallback itself (:meth:`SimRobot.hold`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.core.protocols import RobotInfo
from robolearn.ros_nodes.command_guard import CommandGuard
from robolearn.ros_nodes.embodiments import embodiment_for
from robolearn.ros_nodes.embodiments.base import Embodiment, PlanPoints, TwinPlan
from robolearn.ros_nodes.safety import Command


def task_settings(text: str) -> dict[str, Any]:
    """The twin's task settings from the ``task`` parameter, a JSON object of ``gymnasium.make`` keywords
    (``'{"push_force": 120.0}'``); anything else is refused in one line (the task itself checks the keys)."""
    try:
        settings = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"task parameter is not JSON ({err.msg}); pass an object such as "
                         '\'{"push_force": 120.0}\'') from None
    if not isinstance(settings, dict):
        raise ValueError(f"task parameter must be a JSON object of task settings, got {type(settings).__name__}; "
                         'pass e.g. \'{"push_force": 120.0}\'')
    return settings


class SimRobot:
    """The task as a robot: ``apply`` a command (or ``send_action`` an action), ``step``, read the observation.

    Args:
        env_id: a registered robolearn task.
        seed: episode ``i`` resets with ``seed + i``.
        env_kwargs: passed to ``gymnasium.make``.
        max_steps: steps per episode unless the task ends it (0: the task's own limit).
        embodiment: how commands reach the actuators (None: the task's, from ``EMBODIMENTS``).
        log: called with the command guard's messages (refusals, the e-stop latch).
    """

    def __init__(self, env_id: str, seed: int = 0, env_kwargs: dict[str, Any] | None = None, max_steps: int = 0,
                 embodiment: Embodiment | None = None, log: Callable[[str], None] | None = None):
        from robolearn.sim.registry import gym_make, task

        self.spec = task(env_id)
        self.embodiment = embodiment or embodiment_for(env_id)
        self.wrapped = gym_make(env_id, **(env_kwargs or {}))
        self.env = self.wrapped.unwrapped
        self.adapter = self.embodiment.make_adapter(env_id, env_kwargs)
        features = self.env.features()
        self.info = RobotInfo(name=env_id, observation_features=dict(features["observation"]),
                              action_features=dict(features["action"]), control_hz=float(self.env.control_hz))
        """The task's observation and action features and its control rate (Hz)."""
        self.max_steps = int(max_steps) or self.spec.max_episode_steps
        self.seed, self.episode, self.step_count, self.ret = seed, 0, 0, 0.0
        self.held = 0
        """Steps of this episode that ran without a new command (the servos held their targets)."""
        self.obs: dict[str, np.ndarray] = {}
        self.guard = CommandGuard(self.embodiment, self.adapter, env_id, log=log)
        """What reaches the actuators: validation of every command, the e-stop and its fallback."""
        self.sim_time = 0.0
        """Simulated time (s) since construction, across episodes: the clock of the held fallback and of
        trajectories (``time_from_start`` is simulated time)."""
        self.plan: TwinPlan | None = None
        """The command trajectory being followed (None: the servos hold their last targets)."""
        self.target: Command | None = None
        """The setpoint last sent to the actuators in this episode (None: none yet)."""

    def reset(self) -> dict[str, np.ndarray]:
        """Start episode ``self.episode`` (seed ``seed + episode``)."""
        self.obs, _ = self.env.reset(seed=self.seed + self.episode)
        self.step_count, self.ret, self.held = 0, 0.0, 0
        self.adapter.reset()
        self.guard.restart()
        self.target = None
        return self.obs

    def get_observation(self) -> dict[str, np.ndarray]:
        """The latest observation (unbatched, one array per ``info.observation_features`` key)."""
        return self.obs

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Command env action ``(Da,)`` (physical units) through the adapter, from the next :meth:`step` on;
        returns it (the twin clips nothing: limits are the safety filter's)."""
        action = np.asarray(action, np.float64).reshape(-1)
        stamp = self.step_count / self.info.control_hz  # s of simulated time in this episode
        self.apply(self.adapter.command(action, self.obs.get("joint_pos"), stamp))
        return action

    def apply(self, cmd: Command) -> bool:
        """Set the actuators from a command, from the next :meth:`step` on, unless the guard refuses it
        (wrong length, non-finite, outside the robot's range, or the e-stop latched); returns whether it did."""
        if not self.guard.admit(cmd):
            return False
        self.actuate(cmd)
        return True

    def actuate(self, cmd: Command) -> None:
        """Set the actuators from a command the guard already admitted (``guard.admit``)."""
        self.embodiment.apply(self.env, self.adapter, cmd)
        self.target = cmd

    def receive(self, msg: Any) -> bool:
        """A command message on the embodiment's topic: its trajectory replaces the one being followed from
        now on, unless it is malformed (counted by its reason) or the guard refuses a point; returns whether."""
        try:
            points = self.embodiment.twin_plan(self.adapter, msg, self.target, self.obs)
        except ValueError as err:
            self.guard.refuse(getattr(err, "reason", "malformed"), str(err))
            return False
        return self.follow(points)

    def follow(self, points: PlanPoints) -> bool:
        """Follow ``points`` (s from now, full command) from the next :meth:`step` on if the guard admits every
        point; a one-point trajectory at 0 s is a plain command. Returns whether it was admitted."""
        if not points or not self.guard.admit_all([cmd for _, cmd in points]):
            return False
        self.plan = TwinPlan(self.sim_time, self.target, points)
        return True

    def drive(self) -> bool:
        """Set the actuators to the trajectory's setpoint at the end of the coming step (the guard's bounds
        checked on that very command); returns whether a trajectory drove them (False: the servos hold)."""
        if self.plan is None:
            return False
        t = self.sim_time + 1.0 / self.info.control_hz
        cmd = self.plan.sample(t)
        if t >= self.plan.end:
            self.plan = None
        reason = self.guard.bounds.check(cmd)
        if reason is not None:
            self.guard.refuse(reason)
            self.plan = None
            return False
        self.actuate(cmd)
        return True

    def estop(self, latched: bool) -> None:
        """Latch (True) or clear (False) the e-stop; while latched :meth:`hold` drives the actuators."""
        if latched:
            self.guard.latch()
            self.plan = None
        else:
            self.guard.clear()

    def hold(self) -> bool:
        """While the e-stop is latched, set the actuators to the embodiment's fallback; returns whether it did."""
        cmd = self.guard.fallback(self.obs, self.sim_time)
        if cmd is None:
            return False
        self.embodiment.apply(self.env, self.adapter, cmd)
        self.target = None  # after a clear, joints a trajectory leaves out hold where they are
        return True

    def step(self) -> tuple[bool, dict[str, Any]]:
        """One control step; returns (episode over, info with ``success``, ``return``, ``length``)."""
        self.env.physics_step()
        self.obs, reward, terminated, _, info = self.env.post_step()
        self.step_count += 1
        self.sim_time += 1.0 / self.info.control_hz
        self.ret += float(reward)
        done = bool(terminated) or self.step_count >= self.max_steps
        return done, {"episode": self.episode, "success": bool(info.get("is_success", False)),
                      "return": self.ret, "length": self.step_count, "held_steps": self.held}

    def joints(self) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        """(names, positions, velocities) for ``joint_states`` (the embodiment's: arm joints rad and rad/s, and
        the gripper closure 0..1); None without any (a quadrotor)."""
        if not self.obs:
            return None
        return self.embodiment.twin_joints(self.adapter, self.obs)
