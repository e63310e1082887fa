"""The safety filter between a policy and a robot: pure Python, no ROS, so it is tested on its own.

A :class:`Command` is what a robot adapter sends, in physical units; what its ``values`` mean is the
embodiment's (:mod:`robolearn.ros_nodes.embodiments`): e.g. an arm's joint position targets (rad) then the
gripper closure (0..1), a quadrotor's body rates (rad/s) then collective thrust (0..1).

:meth:`SafetyFilter.filter` checks one command against the measured :class:`RobotState`, in this order:
e-stop / tripped latch, length, finite values, PD gains, stamp (out of order, stale, from the future), then
the embodiment's limits (its :class:`SafetyChecks`). :class:`JointTargetChecks` are the limits of position
targets that arms and humanoids share: joint position range, per-step change, velocity and acceleration (on
the command, with the configured control period: a target may lead the measured position by at most
``max_step`` and ``max_velocity * period``, and that lead may change by at most ``max_acceleration *
period**2`` per command) and an end-effector workspace box (via forward kinematics of the targets).
Violations of a limit are clipped (``violation="clip"``, the default, counted as ``clip:<limit>``) or
rejected (``violation="reject"``). State limits of an embodiment (a quadrotor's tilt, altitude, geofence)
trip the latch: the fallback runs until :meth:`SafetyFilter.reset` (or :meth:`SafetyFilter.rearm`, which
leaves an e-stop latched).

:meth:`SafetyFilter.tick` runs the watchdog: no accepted command for ``watchdog_timeout`` s switches to the
embodiment's fallback (arm: hold the measured position; humanoid: damping, ``kp = 0``; quadrotor: hover,
then land). Every rejection is counted by reason in :attr:`SafetyFilter.counts` and passed to the ``log``
callback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np


@dataclass
class Command:
    """One robot command (see the module docstring for the meaning of ``values`` per embodiment)."""

    stamp: float
    """Time the command was issued (s, ROS clock)."""
    values: np.ndarray
    """``(n,)`` float64 targets in physical units."""
    kp: np.ndarray | None = None
    """Humanoid position gains ``(n,)`` N m/rad; None elsewhere."""
    kd: np.ndarray | None = None
    """Humanoid damping gains ``(n,)`` N m s/rad; None elsewhere."""


@dataclass
class RobotState:
    """What the filter knows of the robot: the latest measurements (None until received)."""

    joint_pos: np.ndarray | None = None
    """Measured joint positions (rad), in command order (arm: without the gripper)."""
    gripper: float | None = None
    """Measured gripper closure 0..1 (arm); the arm fallback keeps the last commanded closure if any."""
    position: np.ndarray | None = None
    """Quadrotor position (3,) m, world frame (z up)."""
    quat: np.ndarray | None = None
    """Quadrotor attitude (4,) wxyz."""
    velocity: np.ndarray | None = None
    """Quadrotor linear velocity (3,) m/s, world frame."""


@dataclass
class SafetyConfig:
    """Limits of one robot. Per-joint lists have one entry per commanded joint (arm: without gripper).

    Which fields apply, and how many joints the per-joint lists need, is the embodiment's: its
    :class:`SafetyChecks` validate them when the filter is built.
    """

    embodiment: str = "arm"
    """The robot's embodiment, a key of :data:`robolearn.ros_nodes.embodiments.EMBODIMENTS` (arm, humanoid,
    quadrotor)."""
    size: int = 8
    """Command length (arm: joints + 1 gripper; humanoid: joints; quadrotor: 4)."""
    period: float = 0.05
    """Control period of the robot (s): the time between commands, for velocity and acceleration."""
    position_low: list[float] = field(default_factory=list)
    """Joint position lower limits (rad); empty: none."""
    position_high: list[float] = field(default_factory=list)
    """Joint position upper limits (rad); empty: none."""
    max_velocity: list[float] = field(default_factory=list)
    """Largest joint velocity implied by consecutive targets (rad/s); empty: none."""
    max_acceleration: list[float] = field(default_factory=list)
    """Largest change of that velocity per second (rad/s^2); empty: none."""
    max_step: float = 0.25
    """Largest lead of any joint target over the measured position (rad)."""
    workspace_low: list[float] = field(default_factory=list)
    """End-effector box lower corner (3,) m, world frame (arm); empty: no box."""
    workspace_high: list[float] = field(default_factory=list)
    """End-effector box upper corner (3,) m (arm)."""
    max_rate: float = 6.0
    """Quadrotor body-rate bound (rad/s)."""
    max_tilt: float = 0.8
    """Quadrotor tilt from upright that trips the fallback (rad)."""
    min_altitude: float = -1.0
    """Quadrotor altitude below which it trips (m); negative: no floor (it has to land)."""
    max_altitude: float = 3.0
    """Quadrotor altitude above which it trips (m)."""
    geofence_radius: float = 3.0
    """Largest horizontal distance from ``geofence_center`` (m)."""
    geofence_center: list[float] = field(default_factory=lambda: [0.0, 0.0])
    """Geofence centre (x, y) m."""
    hover_thrust: float = 0.444
    """Normalized thrust that holds the quadrotor's weight (1 / thrust-to-weight)."""
    hover_seconds: float = 2.0
    """Quadrotor fallback: hover this long (s), then land."""
    damping: float = 2.0
    """Humanoid fallback joint damping kd (N m s/rad), with kp = 0."""
    watchdog_timeout: float = 0.1
    """No accepted command for this long (s) switches to the fallback."""
    max_age: float = 0.2
    """Commands older than this on arrival are stale (s)."""
    violation: Literal["clip", "reject"] = "clip"
    """What a limit violation does: clip the command into the limits, or reject it."""

    def __post_init__(self) -> None:
        if self.period <= 0 or self.watchdog_timeout <= 0 or self.max_age <= 0:
            raise ValueError("safety.period, watchdog_timeout and max_age must be positive")
        if bool(self.workspace_low) != bool(self.workspace_high) or len(self.workspace_low) not in (0, 3):
            raise ValueError("safety.workspace_low/high: give both, 3 values each, or neither")

    def check_joint_lists(self, n: int) -> None:
        """Raise ValueError naming the field when a per-joint list does not have ``n`` values."""
        for name in ("position_low", "position_high", "max_velocity", "max_acceleration"):
            value = getattr(self, name)
            if value and len(value) != n:
                raise ValueError(f"safety.{name}: {len(value)} values for {n} joints")


@dataclass
class Verdict:
    """The outcome of filtering one command: the command to forward (None: rejected) and why."""

    command: Command | None
    reason: str | None = None
    """Why it was rejected (None when forwarded)."""
    clipped: list[str] = field(default_factory=list)
    """Limits the forwarded command was clipped to."""


def violates(cfg: SafetyConfig, name: str, clipped: list[str]) -> bool:
    """Record a violation of limit ``name``: True when it rejects the command (``violation="reject"``), else
    ``name`` is appended to ``clipped`` and the caller clips."""
    if cfg.violation == "reject":
        return True
    clipped.append(name)
    return False


class SafetyChecks(Protocol):
    """An embodiment's part of the filter: its command limits, state limits and fallback.

    One instance serves one :class:`SafetyFilter` and may keep history (the previous targets); the filter
    calls :meth:`forget` whenever that history no longer describes the robot.
    """

    def limit(self, values: np.ndarray, state: RobotState) -> Verdict:
        """Check (and clip) a finite command of the right length; the verdict's command carries the values."""
        ...

    def observed(self, values: np.ndarray) -> None:
        """A command reached the robot past this filter (monitor mode)."""
        ...

    def state_violation(self, state: RobotState) -> str | None:
        """Why the measured ``state`` trips the latch, or None."""
        ...

    def forget(self) -> None:
        """Drop the command history (after a reset, a re-arm or the start of a fallback)."""
        ...

    def start_fallback(self, state: RobotState) -> None:
        """The fallback starts now, with the robot in ``state``."""
        ...

    def fallback(self, state: RobotState, now: float, since: float | None) -> Command | None:
        """The safe command at ``now`` (s), the fallback having started at ``since``; None until the state is
        known."""
        ...


class JointTargetChecks:
    """Limits of joint position targets and a hold fallback, for the first ``n_joints`` command values.

    Args:
        cfg: the limits; its per-joint lists must have ``n_joints`` values.
        n_joints: how many leading command values are joint targets (rad).
        fk: forward kinematics, targets ``(n_joints,)`` rad -> end-effector position ``(3,)`` m, for the
            workspace box (the box is skipped without it).
    """

    def __init__(self, cfg: SafetyConfig, n_joints: int, fk: Callable[[np.ndarray], np.ndarray] | None = None):
        cfg.check_joint_lists(n_joints)
        self.cfg, self.n, self.fk = cfg, n_joints, fk
        self._last_values: np.ndarray | None = None
        self._last_velocity: np.ndarray | None = None
        self._hold: np.ndarray | None = None

        def arr(values: Sequence[float], fill: float) -> np.ndarray:
            return np.asarray(values, np.float64) if values else np.full(n_joints, fill)

        self._low, self._high = arr(cfg.position_low, -np.inf), arr(cfg.position_high, np.inf)
        self._vmax, self._amax = arr(cfg.max_velocity, np.inf), arr(cfg.max_acceleration, np.inf)

    def limit(self, values: np.ndarray, state: RobotState) -> Verdict:
        """Lead over the measured position (velocity, per-step change), its change (acceleration), the joint
        range, the workspace box, then :meth:`limit_rest` on the values after the joints."""
        cfg, n = self.cfg, self.n
        q, clipped = values[:n].copy(), []
        ref = state.joint_pos if state.joint_pos is not None else self._last_values
        if ref is not None:
            ref = np.asarray(ref, np.float64)
            if self._last_values is not None and np.abs(ref - self._last_values).max() > 2 * cfg.max_step:
                self._last_velocity = None  # the robot was moved (reset) away from its targets
            vel = (q - ref) / cfg.period
            if self._last_velocity is not None and np.isfinite(self._amax).any():
                dv = self._amax * cfg.period
                lo, hi = self._last_velocity - dv, self._last_velocity + dv
                if ((vel < lo) | (vel > hi)).any():
                    if violates(cfg, "acceleration", clipped):
                        return Verdict(None, "acceleration limit")
                    vel = np.clip(vel, lo, hi)
            step_vmax = np.minimum(self._vmax, cfg.max_step / cfg.period)
            if (np.abs(vel) > step_vmax).any():
                if violates(cfg, "velocity/step", clipped):
                    return Verdict(None, "velocity or per-step change limit")
                vel = np.clip(vel, -step_vmax, step_vmax)
            q = ref + vel * cfg.period
        if ((q < self._low) | (q > self._high)).any():
            if violates(cfg, "position", clipped):
                return Verdict(None, "joint position limit")
            q = np.clip(q, self._low, self._high)
        if cfg.workspace_low and self.fk is not None:
            ee = np.asarray(self.fk(q), np.float64)
            if ((ee < cfg.workspace_low) | (ee > cfg.workspace_high)).any():
                return Verdict(None, f"end effector {np.round(ee, 3).tolist()} outside the workspace box")
        out = values.copy()
        out[:n] = q
        reason = self.limit_rest(out, clipped)
        if reason is not None:
            return Verdict(None, reason)
        self._last_velocity = None if ref is None else (q - ref) / cfg.period
        self._last_values = q
        return Verdict(Command(0.0, out), None, clipped)

    def limit_rest(self, out: np.ndarray, clipped: list[str]) -> str | None:
        """Check (clip in place) the values after the joints; returns a rejection reason or None. None here."""
        return None

    def observed(self, values: np.ndarray) -> None:
        pass

    def state_violation(self, state: RobotState) -> str | None:
        return None

    def forget(self) -> None:
        self._last_values = self._last_velocity = None

    def start_fallback(self, state: RobotState) -> None:
        self._hold = None if state.joint_pos is None else np.asarray(state.joint_pos, np.float64)
        self.forget()

    def hold(self, state: RobotState) -> np.ndarray | None:
        """The joint positions (rad) the fallback holds: measured when it started (or first known)."""
        if self._hold is None and state.joint_pos is not None:
            self._hold = np.asarray(state.joint_pos, np.float64)
        return self._hold

    def fallback(self, state: RobotState, now: float, since: float | None) -> Command | None:
        """Hold the position (the values after the joints are the subclass's to add)."""
        hold = self.hold(state)
        return None if hold is None else Command(now, hold.copy())


class SafetyFilter:
    """Checks commands, runs the watchdog and the e-stop latch; see the module docstring.

    Args:
        cfg: the limits.
        checks: the embodiment's limits and fallback (``EMBODIMENTS[cfg.embodiment].safety_checks(cfg, adapter)``).
        log: called with a message for every rejection and every fallback switch.
    """

    def __init__(self, cfg: SafetyConfig, checks: SafetyChecks, log: Callable[[str], None] | None = None):
        self.cfg, self.checks, self.log = cfg, checks, log or (lambda message: None)
        self.counts: Counter[str] = Counter()
        self.state = RobotState()
        self.estopped = False
        self.trip_reason: str | None = None
        self.fallback_active = False
        self.fallback_since: float | None = None
        self._last_stamp = -np.inf
        self._last_accept_time: float | None = None

    # ----------------------------------------------------------------- state and latches
    def update_state(self, **measured: np.ndarray | float | None) -> None:
        """Store measurements (fields of :class:`RobotState`); the embodiment's state limits may trip the latch."""
        self.state = replace(self.state, **{k: v for k, v in measured.items() if v is not None})
        if self.trip_reason is None:
            reason = self.checks.state_violation(self.state)
            if reason is not None:
                self.trip(reason)

    def estop(self, source: str = "e-stop") -> None:
        """Latch the e-stop: every command is rejected and the fallback runs until :meth:`reset`."""
        if not self.estopped:
            self.log(f"e-stop latched ({source})")
        self.estopped = True
        self.counts["estop"] += 1

    def trip(self, reason: str) -> None:
        """Latch the fallback for ``reason`` (a state limit) until :meth:`reset`."""
        self.trip_reason = reason
        self.counts[f"trip:{reason}"] += 1
        self.log(f"tripped: {reason}")

    def rearm(self) -> str | None:
        """Clear a state-limit trip but not the e-stop (the robot was put back in a safe state, as an operator
        or the sim twin's episode reset does); returns the cleared trip's reason (None: it was not tripped)."""
        reason, self.trip_reason = self.trip_reason, None
        if reason is not None:
            self.checks.forget()
            self.log(f"re-armed after the trip ({reason})")
        return reason

    def reset(self) -> None:
        """Clear the e-stop and any trip; commands are accepted again, starting from the measured state."""
        self.estopped, self.trip_reason = False, None
        self._last_stamp = -np.inf
        self.checks.forget()
        self.log("safety reset")

    @property
    def latched(self) -> bool:
        return self.estopped or self.trip_reason is not None

    # ----------------------------------------------------------------- commands
    def _reject(self, reason: str) -> Verdict:
        self.counts[reason] += 1
        self.log(f"rejected command: {reason}")
        return Verdict(None, reason)

    def filter(self, cmd: Command, now: float) -> Verdict:
        """Check ``cmd`` received at ``now`` (s); returns what to forward to the robot, if anything."""
        if self.estopped:
            return self._reject("e-stop latched")
        if self.trip_reason is not None:
            return self._reject(f"tripped: {self.trip_reason}")
        values = np.asarray(cmd.values, dtype=np.float64).reshape(-1)
        if values.size != self.cfg.size:
            return self._reject(f"wrong length {values.size}, expected {self.cfg.size}")
        gains = [g for g in (cmd.kp, cmd.kd) if g is not None]
        if not np.isfinite(values).all() or not all(np.isfinite(g).all() for g in gains):
            return self._reject("NaN or inf in command")
        if any(np.asarray(g).size != self.cfg.size for g in gains) or any((np.asarray(g) < 0).any() for g in gains):
            return self._reject("PD gains of the wrong length or negative")
        if not np.isfinite(cmd.stamp) or cmd.stamp <= self._last_stamp:
            return self._reject("out of order")
        if now - cmd.stamp > self.cfg.max_age:
            return self._reject(f"stale ({now - cmd.stamp:.3f} s old)")
        if cmd.stamp - now > self.cfg.max_age:
            return self._reject("stamped in the future")
        verdict = self.checks.limit(values, self.state)
        if verdict.command is None:
            return self._reject(verdict.reason or "limit")
        for name in verdict.clipped:
            self.counts[f"clip:{name}"] += 1
        out = replace(cmd, values=verdict.command.values)
        self._last_stamp = cmd.stamp
        self._accepted(now)
        return Verdict(out, None, verdict.clipped)

    def observe(self, cmd: Command, now: float) -> None:
        """Monitor mode: ``cmd`` reached the robot at ``now`` (s) from a filter in the policy's own process
        (:mod:`robolearn.ros_nodes.inline_safety`); it feeds the watchdog as an accepted command does (and the
        embodiment sees it: an arm's fallback keeps its gripper closure). One seen while latched is counted and
        logged: the monitor cannot block it, only report it."""
        if self.latched:
            self.counts["command while latched"] += 1
            self.log("a command reached the robot while latched")
            return
        values = np.asarray(cmd.values, np.float64).reshape(-1)
        if values.size == self.cfg.size:
            self.checks.observed(values)
        self._accepted(now)

    def _accepted(self, now: float) -> None:
        self._last_accept_time = now
        if self.fallback_active:
            self.log("commands resumed; fallback off")
        self.fallback_active, self.fallback_since = False, None

    # ----------------------------------------------------------------- watchdog and fallback
    def time_to_fallback(self, now: float) -> float | None:
        """Seconds from ``now`` (s) until the watchdog switches to the fallback if no command is accepted
        meanwhile (0 when overdue); None when the fallback already runs or no command was ever accepted."""
        if self.fallback_active or self._last_accept_time is None:
            return None
        return max(0.0, self._last_accept_time + self.cfg.watchdog_timeout - now)

    def tick(self, now: float) -> Command | None:
        """Run the watchdog at ``now`` (s); returns the fallback command to send, or None (all is well)."""
        timed_out = self._last_accept_time is None or now - self._last_accept_time > self.cfg.watchdog_timeout
        if not (self.latched or timed_out):
            return None
        if not self.fallback_active:
            reason = "e-stop" if self.estopped else self.trip_reason or "watchdog: no command"
            self.counts["fallback"] += 1
            self.log(f"fallback on ({reason})")
            self.fallback_active, self.fallback_since = True, now
            self.checks.start_fallback(self.state)
        return self.fallback(now)

    def fallback(self, now: float) -> Command | None:
        """The embodiment's safe command at ``now``; None until the robot state is known."""
        return self.checks.fallback(self.state, now, self.fallback_since)
