"""Terminal keyboard teleop: works over SSH and without X (reads stdin in cbreak mode).

Keys (lower case):

=========  ============================  =========  ==========================
``w`` `s`  +x / -x (forward / back)      Enter      start / stop an episode
``a`` `d`  +y / -y (left / right)        ``y``      mark success (ends it)
``r`` `f`  +z / -z (up / down)           ``n``      mark failure (ends it)
``z`` `c`  +yaw / -yaw                   ``x``      discard the episode
space      toggle the gripper            ``t``      take over / hand back
                                         ``Q`` Esc  quit
=========  ============================  =========  ==========================

A terminal reports key presses, not releases: a key moves the arm for ``hold_steps`` control steps after
each press (auto-repeat keeps a held key moving).
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from robolearn.teleop.base import EEDeltaMapping, TeleopDevice, TeleopEvent

MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0),
    "r": (2, 1.0), "f": (2, -1.0), "z": (3, 1.0), "c": (3, -1.0),
}
"""Key -> (twist axis, sign); axes are x, y, z, yaw."""
EVENT_KEYS: dict[str, TeleopEvent] = {
    "\n": TeleopEvent.START_STOP, "\r": TeleopEvent.START_STOP, "y": TeleopEvent.SUCCESS,
    "n": TeleopEvent.FAILURE, "x": TeleopEvent.DISCARD, "t": TeleopEvent.TAKEOVER,
    "Q": TeleopEvent.QUIT, "\x1b": TeleopEvent.QUIT,
}
GRIPPER_KEY = " "


class KeySource(Protocol):
    def read(self) -> str:
        """Characters typed since the last call ('' when none); never blocks."""
        ...

    def close(self) -> None: ...


class ScriptedKeys:
    """Replays ``steps``: the characters typed before each control step (tests, demos)."""

    def __init__(self, steps: Iterable[str]) -> None:
        self._steps: Iterator[str] = iter(steps)

    def read(self) -> str:
        return next(self._steps, "")

    def close(self) -> None:
        pass


class TerminalKeys:
    """Reads keys from a terminal without waiting for Enter; restores the terminal on ``close``."""

    def __init__(self, stream=None) -> None:
        import termios
        import tty

        self.stream = stream or sys.stdin
        if not self.stream.isatty():
            raise RuntimeError("keyboard teleop needs an interactive terminal (stdin is not a TTY)")
        self.fd = self.stream.fileno()
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def read(self) -> str:
        chars = []
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 64)
            if not data:
                break
            chars.append(data.decode(errors="ignore"))
        return "".join(chars)

    def close(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


class KeyboardTeleop(TeleopDevice):
    """End-effector teleop from a :class:`KeySource` (a terminal by default)."""

    def __init__(self, source: KeySource | None = None, mapping: EEDeltaMapping | None = None,
                 hold_steps: int = 3) -> None:
        super().__init__(mapping)
        self.source = source if source is not None else TerminalKeys()
        self.hold_steps = int(hold_steps)
        self._hold = np.zeros(4, np.int64)
        self._sign = np.zeros(4)

    def poll(self) -> None:
        self._hold = np.maximum(self._hold - 1, 0)
        self._active = False
        text = self.source.read()
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b" and text[i + 1:i + 2] in ("[", "O"):  # arrow/function key: ignore it
                i += 3
                continue
            if ch in MOTION_KEYS:
                axis, sign = MOTION_KEYS[ch]
                self._hold[axis], self._sign[axis] = self.hold_steps, sign
            elif ch == GRIPPER_KEY:
                self.toggle_gripper()
            elif ch in EVENT_KEYS:
                self._emit(EVENT_KEYS[ch])
            i += 1
        moving = self._hold > 0
        self._twist = np.where(moving, self._sign, 0.0)
        self._active = self._active or bool(moving.any())

    def close(self) -> None:
        self.source.close()
