"""Gamepad teleop (Xbox/PlayStation layout) through pygame's joystick API.

Default mapping (SDL2 indices, configurable in :class:`GamepadConfig`): left stick moves in x/y, right
stick vertical moves in z and horizontal turns (yaw); RB toggles the gripper; A start/stop, X success,
Y failure, B discard, LB take over, Start quit. The person is intervening while a stick is out of its
dead zone (or while taken over).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robolearn.teleop.base import EEDeltaMapping, TeleopDevice, TeleopEvent


@dataclass
class GamepadConfig:
    """Axis and button indices of the pad, and the stick dead zone."""

    axis_x: int = 1
    """Axis for x (pushed forward = negative on most pads, hence ``invert_x``)."""
    axis_y: int = 0
    axis_z: int = 4
    axis_yaw: int = 3
    invert_x: bool = True
    invert_y: bool = True
    invert_z: bool = True
    invert_yaw: bool = True
    deadzone: float = 0.15
    """Stick deflection below which the axis reads 0."""
    button_gripper: int = 5
    buttons: tuple[tuple[int, str], ...] = ((0, "START_STOP"), (2, "SUCCESS"), (3, "FAILURE"),
                                            (1, "DISCARD"), (4, "TAKEOVER"), (7, "QUIT"))
    """(button index, TeleopEvent name) pairs."""


class JoystickSource(Protocol):
    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Current axes in [-1, 1] and buttons (0/1)."""
        ...

    def close(self) -> None: ...


class ScriptedJoystick:
    """Replays a list of ``(axes, buttons)`` readings, one per control step; then holds the last."""

    def __init__(self, readings: list[tuple[list[float], list[int]]]) -> None:
        self.readings = [(np.asarray(a, float), np.asarray(b, int)) for a, b in readings]
        self.i = 0

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        reading = self.readings[min(self.i, len(self.readings) - 1)]
        self.i += 1
        return reading

    def close(self) -> None:
        pass


class PygameJoystick:
    """The first (or ``index``-th) joystick seen by pygame; no window is opened."""

    def __init__(self, index: int = 0) -> None:
        try:
            import os

            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            import pygame
        except ImportError as err:
            raise ImportError("gamepad teleop needs pygame: pip install pygame") from err
        self.pygame = pygame
        pygame.init()
        pygame.joystick.init()
        if pygame.joystick.get_count() <= index:
            raise RuntimeError(f"no gamepad found (pygame sees {pygame.joystick.get_count()} joysticks)")
        self.stick = pygame.joystick.Joystick(index)
        self.stick.init()

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        self.pygame.event.pump()
        axes = np.array([self.stick.get_axis(i) for i in range(self.stick.get_numaxes())])
        buttons = np.array([self.stick.get_button(i) for i in range(self.stick.get_numbuttons())])
        return axes, buttons

    def close(self) -> None:
        self.pygame.joystick.quit()


class GamepadTeleop(TeleopDevice):
    """End-effector teleop from a gamepad; buttons fire on press (not while held)."""

    def __init__(self, source: JoystickSource | None = None, mapping: EEDeltaMapping | None = None,
                 config: GamepadConfig | None = None) -> None:
        super().__init__(mapping)
        self.config = config or GamepadConfig()
        self.source = source if source is not None else PygameJoystick()
        self._prev: np.ndarray | None = None

    def _axis(self, axes: np.ndarray, index: int, invert: bool) -> float:
        if index >= len(axes):
            return 0.0
        v = float(axes[index])
        v = 0.0 if abs(v) < self.config.deadzone else v
        return -v if invert else v

    def poll(self) -> None:
        c = self.config
        axes, buttons = self.source.read()
        self._active = False
        self._twist = np.array([self._axis(axes, c.axis_x, c.invert_x), self._axis(axes, c.axis_y, c.invert_y),
                                self._axis(axes, c.axis_z, c.invert_z), self._axis(axes, c.axis_yaw, c.invert_yaw)])
        prev = self._prev if self._prev is not None and len(self._prev) == len(buttons) else np.zeros_like(buttons)
        pressed = (np.asarray(buttons) > 0) & ~(prev > 0)
        self._prev = np.asarray(buttons)
        if c.button_gripper < len(pressed) and pressed[c.button_gripper]:
            self.toggle_gripper()
        for index, name in c.buttons:
            if index < len(pressed) and pressed[index]:
                self._emit(TeleopEvent[name])
        self._active = self._active or bool(np.any(self._twist != 0))

    def close(self) -> None:
        self.source.close()
