"""The teleop devices by name: the one list ``robolearn teleop``, ``robolearn hil`` and the ROS teleop node read."""

from __future__ import annotations

from typing import Any

from robolearn.teleop.base import EEDeltaMapping, TeleopDevice
from robolearn.teleop.gamepad import GamepadTeleop
from robolearn.teleop.keyboard import KeyboardTeleop
from robolearn.teleop.spacemouse import SpaceMouseTeleop

DEVICES: dict[str, type[TeleopDevice]] = {
    "keyboard": KeyboardTeleop,
    "gamepad": GamepadTeleop,
    "spacemouse": SpaceMouseTeleop,
}
"""Device name -> class, constructed as ``cls(source, mapping)``. The hardware libraries (pygame,
pyspacemouse) are imported by each device's default source, only when one is opened."""


def make_device(name: str, mapping: EEDeltaMapping, source: Any = None) -> TeleopDevice:
    """A teleop device by name; ``source`` replaces its hardware input (scripted events in tests)."""
    if name not in DEVICES:
        raise ValueError(f"unknown teleop device {name!r}; choose from {', '.join(DEVICES)}")
    return DEVICES[name](source, mapping)
