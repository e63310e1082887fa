"""The safety filter between a policy and a robot: pure Python, no ROS, so it is tested on its own.

A :class:`Command` is what a robot adapter sends, in physical units:

* arm: joint position targets (rad) then the gripper closure (0 open .. 1 closed);
* humanoid: joint position targets (rad), with per-joint PD gains ``kp`` (N m/rad), ``kd`` (N m s/rad);
* quadrotor: body rates roll, pitch, yaw (rad/s, FLU body frame) then collective thrust (0..1 of max).

:meth:`SafetyFilter.filter` checks one command against the measured :class:`RobotState`, in this order:
e-stop / tripped latch, finite values, length, stamp (out of order, stale, from the future), then the
limits: joint position range, per-step change, velocity and acceleration (on the command, with the
configured control period: a target may lead the measured position by at most ``max_step`` and
``max_velocity * period``, and that lead may change by at most ``max_acceleration * period**2`` per
command), the end-effector workspace box (arm, via forward kinematics of the
targets) and rate / thrust bounds (quadrotor). Violations of a limit are clipped (``violation="clip"``,
the default, counted as ``clip:<limit>``) or rejected (``violation="reject"``). Quadrotor state limits
(tilt, altitude, geofence) trip the latch: the fallback flies until :meth:`SafetyFilter.reset` (or
:meth:`SafetyFilter.rearm`, which leaves an e-stop latched).

:meth:`SafetyFilter.tick` runs the watchdog: no accepted command for ``watchdog_timeout`` s switches
to the embodiment's fallback (arm: hold the measured position; humanoid: damping, ``kp = 0``; quadrotor:
hover, then land). Every rejection is counted by reason in :attr:`SafetyFilter.counts` and passed to
the ``log`` callback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

Embodiment = Literal["arm", "humanoid", "quadrotor"]


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
    """Limits of one robot. Per-joint lists have one entry per commanded joint (arm: without gripper)."""

    embodiment: Embodiment = "arm"
    """arm, humanoid or quadrotor."""
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
        n = self.size - 1 if self.embodiment == "arm" else self.size
        for name in ("position_low", "position_high", "max_velocity", "max_acceleration"):
            value = getattr(self, name)
            if value and len(value) != n:
                raise ValueError(f"safety.{name}: {len(value)} values for {n} joints")
        if self.embodiment == "quadrotor" and self.size != 4:
            raise ValueError(f"safety.size must be 4 for a quadrotor, got {self.size}")
        if self.period <= 0 or self.watchdog_timeout <= 0 or self.max_age <= 0:
            raise ValueError("safety.period, watchdog_timeout and max_age must be positive")
        if bool(self.workspace_low) != bool(self.workspace_high) or len(self.workspace_low) not in (0, 3):
            raise ValueError("safety.workspace_low/high: give both, 3 values each, or neither")


@dataclass
class Verdict:
    """The outcome of filtering one command: the command to forward (None: rejected) and why."""

    command: Command | None
    reason: str | None = None
    """Why it was rejected (None when forwarded)."""
    clipped: list[str] = field(default_factory=list)
    """Limits the forwarded command was clipped to."""


class SafetyFilter:
    """Checks commands, runs the watchdog and the e-stop latch; see the module docstring.

    Args:
        cfg: the limits.
        fk: forward kinematics, joint targets ``(n,)`` rad -> end-effector position ``(3,)`` m (arm
            workspace box; required when the box is set).
        log: called with a message for every rejection and every fallback switch.
    """

    def __init__(self, cfg: SafetyConfig, fk: Callable[[np.ndarray], np.ndarray] | None = None,
                 log: Callable[[str], None] | None = None):
        if cfg.workspace_low and cfg.embodiment == "arm" and fk is None:
            raise ValueError("an end-effector workspace box needs forward kinematics (fk)")
        self.cfg, self.fk, self.log = cfg, fk, log or (lambda message: None)
        self.counts: Counter[str] = Counter()
        self.state = RobotState()
        self.estopped = False
        self.trip_reason: str | None = None
        self.fallback_active = False
        self.fallback_since: float | None = None
        self._last_stamp = -np.inf
        self._last_accept_time: float | None = None
        self._last_values: np.ndarray | None = None
        self._last_velocity: np.ndarray | None = None
        self._hold: np.ndarray | None = None
        self._last_gripper: float | None = None
        n = cfg.size - 1 if cfg.embodiment == "arm" else cfg.size
        self._n_joints = n if cfg.embodiment != "quadrotor" else 0

        def arr(values: Sequence[float], fill: float) -> np.ndarray:
            return np.asarray(values, np.float64) if values else np.full(n, fill)

        self._low, self._high = arr(cfg.position_low, -np.inf), arr(cfg.position_high, np.inf)
        self._vmax, self._amax = arr(cfg.max_velocity, np.inf), arr(cfg.max_acceleration, np.inf)

    # ----------------------------------------------------------------- state and latches
    def update_state(self, **measured: np.ndarray | float | None) -> None:
        """Store measurements (fields of :class:`RobotState`); quadrotor state limits may trip the latch."""
        self.state = replace(self.state, **{k: v for k, v in measured.items() if v is not None})
        if self.cfg.embodiment == "quadrotor" and self.trip_reason is None:
            reason = self._quad_state_violation()
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
            self._last_values = self._last_velocity = None
            self.log(f"re-armed after the trip ({reason})")
        return reason

    def reset(self) -> None:
        """Clear the e-stop and any trip; commands are accepted again, starting from the measured state."""
        self.estopped, self.trip_reason = False, None
        self._last_stamp = -np.inf
        self._last_values = self._last_velocity = None
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
        if self.cfg.embodiment == "quadrotor":
            verdict = self._limit_quadrotor(values)
        else:
            verdict = self._limit_joints(values)
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
        (:mod:`robolearn.ros_nodes.inline_safety`); it feeds the watchdog as an accepted command does (and an
        arm's fallback keeps its gripper closure). One seen while latched is counted and logged: the monitor
        cannot block it, only report it."""
        if self.latched:
            self.counts["command while latched"] += 1
            self.log("a command reached the robot while latched")
            return
        values = np.asarray(cmd.values, np.float64).reshape(-1)
        if self.cfg.embodiment == "arm" and values.size == self.cfg.size and np.isfinite(values[-1]):
            self._last_gripper = float(min(max(values[-1], 0.0), 1.0))
        self._accepted(now)

    def _accepted(self, now: float) -> None:
        self._last_accept_time = now
        if self.fallback_active:
            self.log("commands resumed; fallback off")
        self.fallback_active, self.fallback_since = False, None

    def _violation(self, name: str, clipped: list[str]) -> bool:
        """Record a limit violation; True when it rejects the command."""
        if self.cfg.violation == "reject":
            return True
        clipped.append(name)
        return False

    def _limit_joints(self, values: np.ndarray) -> Verdict:
        """Position targets: lead over the measured position (velocity, per-step change), its change
        (acceleration), the joint range and the workspace box."""
        cfg, n = self.cfg, self._n_joints
        q, clipped = values[:n].copy(), []
        ref = self.state.joint_pos if self.state.joint_pos is not None else self._last_values
        if ref is not None:
            ref = np.asarray(ref, np.float64)
            if self._last_values is not None and np.abs(ref - self._last_values).max() > 2 * cfg.max_step:
                self._last_velocity = None  # the robot was moved (reset) away from its targets
            vel = (q - ref) / cfg.period
            if self._last_velocity is not None and np.isfinite(self._amax).any():
                dv = self._amax * cfg.period
                lo, hi = self._last_velocity - dv, self._last_velocity + dv
                if ((vel < lo) | (vel > hi)).any():
                    if self._violation("acceleration", clipped):
                        return Verdict(None, "acceleration limit")
                    vel = np.clip(vel, lo, hi)
            step_vmax = np.minimum(self._vmax, cfg.max_step / cfg.period)
            if (np.abs(vel) > step_vmax).any():
                if self._violation("velocity/step", clipped):
                    return Verdict(None, "velocity or per-step change limit")
                vel = np.clip(vel, -step_vmax, step_vmax)
            q = ref + vel * cfg.period
        if ((q < self._low) | (q > self._high)).any():
            if self._violation("position", clipped):
                return Verdict(None, "joint position limit")
            q = np.clip(q, self._low, self._high)
        if cfg.workspace_low and self.fk is not None:
            ee = np.asarray(self.fk(q), np.float64)
            if ((ee < cfg.workspace_low) | (ee > cfg.workspace_high)).any():
                return Verdict(None, f"end effector {np.round(ee, 3).tolist()} outside the workspace box")
        out = values.copy()
        out[:n] = q
        if cfg.embodiment == "arm":
            if not 0.0 <= out[-1] <= 1.0:
                if self._violation("gripper", clipped):
                    return Verdict(None, "gripper outside 0..1")
                out[-1] = min(max(out[-1], 0.0), 1.0)
            self._last_gripper = float(out[-1])
        self._last_velocity = None if ref is None else (q - ref) / cfg.period
        self._last_values = q
        return Verdict(Command(0.0, out), None, clipped)

    def _limit_quadrotor(self, values: np.ndarray) -> Verdict:
        out, clipped, cfg = values.copy(), [], self.cfg
        if (np.abs(out[:3]) > cfg.max_rate).any():
            if self._violation("rate", clipped):
                return Verdict(None, "body rate limit")
            out[:3] = np.clip(out[:3], -cfg.max_rate, cfg.max_rate)
        if not 0.0 <= out[3] <= 1.0:
            if self._violation("thrust", clipped):
                return Verdict(None, "thrust outside 0..1")
            out[3] = min(max(out[3], 0.0), 1.0)
        return Verdict(Command(0.0, out), None, clipped)

    def _quad_state_violation(self) -> str | None:
        cfg, s = self.cfg, self.state
        if s.quat is not None and tilt_of(np.asarray(s.quat)) > cfg.max_tilt:
            return f"tilt above {cfg.max_tilt:.2f} rad"
        if s.position is not None:
            p = np.asarray(s.position)
            if p[2] > cfg.max_altitude or (cfg.min_altitude >= 0 and p[2] < cfg.min_altitude):
                return f"altitude {p[2]:.2f} m outside [{cfg.min_altitude}, {cfg.max_altitude}]"
            if np.hypot(*(p[:2] - np.asarray(cfg.geofence_center))) > cfg.geofence_radius:
                return f"outside the {cfg.geofence_radius} m geofence"
        return None

    # ----------------------------------------------------------------- watchdog and fallback
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
            self._hold = None if self.state.joint_pos is None else np.asarray(self.state.joint_pos, np.float64)
            self._last_values = self._last_velocity = None
        return self.fallback(now)

    def fallback(self, now: float) -> Command | None:
        """The embodiment's safe command at ``now``; None until the robot state is known."""
        cfg, s = self.cfg, self.state
        if cfg.embodiment == "quadrotor":
            if s.quat is None or s.position is None or s.velocity is None:
                return None
            landing = self.fallback_since is not None and now - self.fallback_since > cfg.hover_seconds
            return Command(now, hover_or_land(np.asarray(s.quat), np.asarray(s.position), np.asarray(s.velocity),
                                              cfg.hover_thrust, land=landing))
        if self._hold is None:
            if s.joint_pos is None:
                return None
            self._hold = np.asarray(s.joint_pos, np.float64)
        if cfg.embodiment == "arm":
            grip = self._last_gripper if self._last_gripper is not None else self.state.gripper or 0.0
            return Command(now, np.append(self._hold, grip))
        return Command(now, self._hold.copy(), kp=np.zeros(cfg.size), kd=np.full(cfg.size, cfg.damping))


def tilt_of(quat: np.ndarray) -> float:
    """Angle (rad) between the body z axis of a wxyz quaternion and world z."""
    w, x, y, z = quat / np.linalg.norm(quat)
    return float(np.arccos(np.clip(1.0 - 2.0 * (x * x + y * y), -1.0, 1.0)))


def hover_or_land(quat: np.ndarray, position: np.ndarray, velocity: np.ndarray, hover_thrust: float,
                  land: bool, descent_speed: float = 0.3, k_att: float = 4.0, k_vz: float = 0.8) -> np.ndarray:
    """Rates (rad/s) and normalized thrust levelling the quadrotor and holding (or sinking at) a vertical speed.

    Hover holds ``vz = 0``; landing sinks at ``descent_speed`` m/s and cuts the thrust 3 cm above z = 0.
    Returns ``[roll_rate, pitch_rate, yaw_rate, thrust]``.
    """
    w, x, y, z = quat / np.linalg.norm(quat)
    body_z = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    rot_t = np.array([  # world -> body
        [1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)],
        [2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)],
        [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)],
    ])
    err_world = np.cross(body_z, [0.0, 0.0, 1.0])  # rotation axis that levels the body
    rates = k_att * (rot_t @ err_world)
    vz_target = -descent_speed if land else 0.0
    if land and position[2] < 0.03:
        return np.array([0.0, 0.0, 0.0, 0.0])
    thrust = hover_thrust * (1.0 + k_vz * (vz_target - velocity[2])) / max(body_z[2], 0.5)
    return np.array([rates[0], rates[1], 0.0, min(max(thrust, 0.0), 1.0)])
