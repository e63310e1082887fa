"""The teleop record loop: a person drives the robot (optionally correcting a base policy) and episodes
are recorded with a per-step ``intervention`` flag.

States: *idle* (the scene waits, nothing is recorded) and *recording*. Events (see
:class:`~robolearn.teleop.base.TeleopEvent`): START_STOP begins an episode, or ends it with the env's
success; SUCCESS / FAILURE end it with that label; DISCARD drops it; QUIT discards an open episode and
ends the session. An episode also ends when the env terminates or truncates it.

Without a policy the person is always in control (every recorded step has ``intervention=True``; no
input holds the arm still). With a policy, the policy acts unless the device returns a command, and
``intervention`` records which of the two moved the robot (the HIL-SERL convention).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from robolearn.core.protocols import Policy
from robolearn.datasets.writer import EpisodeWriter
from robolearn.teleop.base import TeleopDevice, TeleopEvent


@dataclass
class SessionResult:
    committed: int = 0
    successes: int = 0
    discarded: int = 0
    steps: int = 0
    intervention_steps: int = 0
    log: list[str] = field(default_factory=list)


def terminal_status(line: str) -> None:
    """One status line, rewritten in place on stderr."""
    sys.stderr.write("\r\x1b[2K" + line)
    sys.stderr.flush()


class TeleopSession:
    """Record episodes of ``env`` driven by ``device`` into ``writer``.

    ``extra_devices`` only contribute events (e.g. a keyboard next to a SpaceMouse). ``observe`` turns an
    env observation into the recorded one (e.g. adds camera images). ``realtime`` paces the loop at the
    dataset's fps; tests turn it off. ``viewer`` is an object with ``sync()`` (a MuJoCo passive viewer).
    """

    def __init__(self, env: gym.Env, device: TeleopDevice, writer: EpisodeWriter, *,
                 policy: Policy | None = None, extra_devices: Sequence[TeleopDevice] = (),
                 observe: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
                 realtime: bool = True, seed: int = 0, viewer: Any = None,
                 status: Callable[[str], None] | None = terminal_status) -> None:
        self.env, self.device, self.writer, self.policy = env, device, writer, policy
        self.devices = [device, *extra_devices]
        self.observe = observe or (lambda o: o)
        self.realtime, self.viewer, self.status = realtime, viewer, status
        self.seed = seed
        self.result = SessionResult()
        self._obs: dict[str, np.ndarray] = {}
        self._t0 = 0.0

    # ------------------------------------------------------------------ episode boundaries
    def _reset(self) -> None:
        obs, _ = self.env.reset(seed=self.seed)
        self.seed += 1
        self._obs = self.observe(obs)
        if self.policy is not None:
            self.policy.reset()

    def _start(self) -> None:
        self.writer.begin_episode(seed=self.seed - 1, meta={"source": "teleop"})
        self._t0 = time.monotonic()
        self._say("recording episode")

    def _end(self, success: bool | None, terminated: bool = False, truncated: bool = False) -> None:
        if self.writer.episode_length > 0:
            rec = self.writer.end_episode(success=success, terminated=terminated, truncated=truncated)
            self.result.committed += 1
            self.result.successes += int(rec.success)
            label = "success" if rec.success else "failure"
            self._say(f"saved episode {rec.index} ({rec.length} steps, {label})")
        else:
            self._discard("empty")
        self._reset()

    def _discard(self, why: str = "discarded") -> None:
        if self.writer.recording:
            self.writer.discard_episode()
            self.result.discarded += 1
            self._say(f"episode {why}")

    def _say(self, msg: str) -> None:
        self.result.log.append(msg)
        if self.status:
            self.status(msg + "\n")

    # ------------------------------------------------------------------ loop
    def _handle(self, events: list[TeleopEvent]) -> bool:
        """Apply events; False when the session should stop."""
        for ev in events:
            if ev is TeleopEvent.QUIT:
                self._discard("discarded (quit)")
                return False
            if ev is TeleopEvent.START_STOP:
                self._end(None) if self.writer.recording else self._start()
            elif ev in (TeleopEvent.SUCCESS, TeleopEvent.FAILURE) and self.writer.recording:
                self._end(ev is TeleopEvent.SUCCESS)
            elif ev is TeleopEvent.DISCARD and self.writer.recording:
                self._discard()
                self._reset()
        return True

    def _act(self) -> tuple[np.ndarray, bool]:
        """The action to apply and whether the person gave it."""
        command = self.device.get_action()
        if command is not None:
            return command, True
        if self.policy is None:
            return self.device.hold_action(), True
        batch = {k: v[None] for k, v in self._obs.items()}
        return np.asarray(self.policy.act(batch))[0, 0].astype(np.float32), False

    def step(self) -> bool:
        """One control step: read devices, apply events, act (and record while recording)."""
        action, human = self._act()
        events = self.device.events()
        for extra in self.devices[1:]:
            extra.poll()
            events += extra.events()
        if not self._handle(events):
            return False
        if not self.writer.recording:
            return True
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = bool(info.get("is_success", False))
        stamp = time.monotonic() - self._t0 if self.realtime else None
        self.writer.add_step(self._obs, action, reward=float(reward), is_success=success, intervention=human,
                             timestamp=stamp)
        self.result.steps += 1
        self.result.intervention_steps += int(human)
        self._obs = self.observe(obs)
        if self.status:
            self.status(f"REC ep {self.writer.num_episodes} step {self.result.steps} "
                        f"{'HUMAN' if human else 'policy'} gripper {action[-1]:.0f} success {success}")
        if terminated or truncated:
            self._end(success, terminated=terminated, truncated=truncated)
        return True

    def run(self, max_episodes: int | None = None, max_steps: int | None = None) -> SessionResult:
        """Loop until QUIT, ``max_episodes`` committed, or ``max_steps`` loop iterations."""
        self._reset()
        self._say("ready: Enter starts an episode, y/n ends it as success/failure, x discards, Q quits")
        period = 1.0 / self.writer.info.fps
        n = 0
        try:
            while max_steps is None or n < max_steps:
                tick = time.monotonic()
                if not self.step() or (max_episodes is not None and self.result.committed >= max_episodes):
                    break
                if self.viewer is not None:
                    self.viewer.sync()
                n += 1
                if self.realtime:
                    time.sleep(max(0.0, period - (time.monotonic() - tick)))
        except KeyboardInterrupt:
            self._discard("discarded (interrupted)")
        return self.result


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
