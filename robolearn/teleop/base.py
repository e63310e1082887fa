"""What every teleop device shares: session events and the mapping to end-effector delta commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class TeleopEvent(enum.Enum):
    """Session controls a person triggers from a device."""

    START_STOP = "start/stop"
    """Start recording an episode, or end the one being recorded (success from the env)."""
    SUCCESS = "success"
    """End the episode and mark it successful."""
    FAILURE = "failure"
    """End the episode and mark it failed."""
    DISCARD = "discard"
    """Drop the episode being recorded."""
    TAKEOVER = "takeover"
    """Toggle holding control (the person's command replaces the policy's even when idle)."""
    QUIT = "quit"
    """End the session (an episode being recorded is discarded)."""


@dataclass
class EEDeltaMapping:
    """From normalized device motion to an end-effector delta action ``(5,)`` float32.

    ``command(twist, gripper)``: ``twist`` = ``[vx, vy, vz, wyaw]`` in [-1, 1] (world frame: x forward
    away from the robot base, y left, z up), ``gripper`` in [0 open, 1 closed].
    """

    max_step: float = 0.01
    """TCP displacement per control step at full deflection (m); 0.2 m/s at 20 Hz."""
    max_yaw_step: float = 0.05
    """Yaw change per control step at full deflection (rad)."""

    def command(self, twist: np.ndarray, gripper: float) -> np.ndarray:
        t = np.clip(np.asarray(twist, np.float64), -1.0, 1.0)
        if t.shape != (4,):
            raise ValueError(f"twist must be [vx, vy, vz, wyaw], got shape {t.shape}")
        return np.array([*(t[:3] * self.max_step), t[3] * self.max_yaw_step, float(np.clip(gripper, 0, 1))],
                        np.float32)


class TeleopDevice:
    """Base of the teleop devices: ``get_action()`` (the :class:`Teleop` protocol), ``events()``,
    ``close()``. Subclasses implement ``poll()``, which reads the source once per control step and
    sets ``self._twist`` / ``self._active`` and queues events."""

    def __init__(self, mapping: EEDeltaMapping | None = None) -> None:
        self.mapping = mapping or EEDeltaMapping()
        self.gripper = 0.0
        """Current gripper command (toggled by the device), 0 open .. 1 closed."""
        self.takeover = False
        """True while the person holds control (toggled by a TAKEOVER event)."""
        self._events: list[TeleopEvent] = []
        self._twist = np.zeros(4)
        self._active = False

    def poll(self) -> None:  # pragma: no cover - every device overrides it
        raise NotImplementedError

    def get_action(self) -> np.ndarray | None:
        """Read the device; the command ``(5,)`` or None when the person is not intervening."""
        self.poll()
        if not (self._active or self.takeover):
            return None
        return self.mapping.command(self._twist, self.gripper)

    def hold_action(self) -> np.ndarray:
        """The command for "no motion" with the current gripper state."""
        return self.mapping.command(np.zeros(4), self.gripper)

    def events(self) -> list[TeleopEvent]:
        """Events since the last call (read during ``get_action``)."""
        out, self._events = self._events, []
        return out

    def _emit(self, event: TeleopEvent) -> None:
        if event is TeleopEvent.TAKEOVER:
            self.takeover = not self.takeover
        self._events.append(event)

    def toggle_gripper(self) -> None:
        self.gripper = 0.0 if self.gripper >= 0.5 else 1.0
        self._active = True

    def close(self) -> None:
        """Release the device (restore the terminal, close handles)."""
