"""3Dconnexion SpaceMouse teleop through ``pyspacemouse`` (HID; ``pip install pyspacemouse``).

Pushing the cap moves the TCP (cap forward = +x, left = +y, up = +z), twisting it turns (yaw). The left
button toggles the gripper, the right button starts/stops an episode; other session keys come from the
keyboard (see ``robolearn teleop``). The person is intervening while the cap is out of its dead zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robolearn.teleop.base import EEDeltaMapping, TeleopDevice, TeleopEvent


@dataclass
class SpaceMouseState:
    """One reading, each axis in [-1, 1]; ``buttons`` (left, right)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    buttons: tuple[int, ...] = (0, 0)


class SpaceMouseSource(Protocol):
    def read(self) -> SpaceMouseState: ...

    def close(self) -> None: ...


class ScriptedSpaceMouse:
    """Replays states, one per control step; then holds the last."""

    def __init__(self, states: list[SpaceMouseState]) -> None:
        self.states, self.i = states, 0

    def read(self) -> SpaceMouseState:
        state = self.states[min(self.i, len(self.states) - 1)]
        self.i += 1
        return state

    def close(self) -> None:
        pass


class PySpaceMouse:
    """The first SpaceMouse found by pyspacemouse."""

    def __init__(self) -> None:
        try:
            import pyspacemouse
        except ImportError as err:
            raise ImportError("SpaceMouse teleop needs pyspacemouse (and hidapi): pip install pyspacemouse") from err
        self.lib = pyspacemouse
        if not pyspacemouse.open():
            raise RuntimeError("no SpaceMouse found (check the USB connection and hidraw permissions)")

    def read(self) -> SpaceMouseState:
        s = self.lib.read()
        return SpaceMouseState(s.x, s.y, s.z, s.roll, s.pitch, s.yaw, tuple(s.buttons))

    def close(self) -> None:
        self.lib.close()


class SpaceMouseTeleop(TeleopDevice):
    """End-effector teleop from a SpaceMouse."""

    def __init__(self, source: SpaceMouseSource | None = None, mapping: EEDeltaMapping | None = None,
                 deadzone: float = 0.1) -> None:
        super().__init__(mapping)
        self.source = source if source is not None else PySpaceMouse()
        self.deadzone = float(deadzone)
        self._prev = (0, 0)

    def poll(self) -> None:
        s = self.source.read()
        self._active = False
        twist = np.array([s.y, -s.x, s.z, -s.yaw], np.float64)
        twist[np.abs(twist) < self.deadzone] = 0.0
        self._twist = twist
        buttons = tuple(s.buttons) + (0, 0)
        if buttons[0] and not self._prev[0]:
            self.toggle_gripper()
        if buttons[1] and not self._prev[1]:
            self._emit(TeleopEvent.START_STOP)
        self._prev = buttons[:2]
        self._active = self._active or bool(np.any(twist != 0))

    def close(self) -> None:
        self.source.close()
