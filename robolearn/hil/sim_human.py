"""Who may take control: a simulated human (a scripted expert with a trigger rule) or a teleop device.

An *intervener* decides, once per vector step and before the action is executed, which envs a person
takes over and what they command:

``decide(obs, proposed) -> (mask (B,) bool, action (B, Da) float32 physical)``
    ``obs`` is the batched observation the policy saw (dict of ``(B, ...)``), ``proposed`` the physical
    action ``(B, Da)`` the policy is about to execute. Rows of ``action`` where ``mask`` is False are
    ignored.
``reset(env_ids)``
    Forget the per-episode state of the envs whose episode just ended (all when None).

:class:`SimHuman` judges with the clean scripted expert and, when it takes over, executes the expert
with ``noise`` (a sub-optimal person who knows what is right but executes it imperfectly). It notices a
problem when

* the policy's action deviates from the clean expert's: an exponential moving average of the mean
  absolute difference in normalized action units (``[-1, 1]`` per dimension) exceeds
  ``action_threshold``;
* the state regresses: the norm of ``obs[state_key]`` (e.g. the peg tip's offset from the hole, m) grew
  by more than ``state_threshold`` from the best value of the episode;
* the policy stalls: ``stall_steps`` steps elapsed in the episode without it ending.

A noticed problem leads to a takeover with probability ``rate`` per step, ``delay`` steps later (reaction
time); the person then keeps control for ``duration`` steps (or to the end of the episode). A takeover
for a stall keeps control to the end of the episode (``stall_hold``), as a person who sees the robot
dither finishes the task: handing a half-done insertion back for a step or two and taking it again costs
more than it teaches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robolearn.core.protocols import Policy

IDLE, PENDING, CONTROL = 0, 1, 2
TO_EPISODE_END = np.iinfo(np.int64).max // 2
"""Takeover timer of a person who keeps control until the episode ends."""


class Intervener(Protocol):
    """Anything that may take control of some envs at a step (see the module docstring)."""

    name: str

    def decide(self, obs: Mapping[str, np.ndarray], proposed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        ...


@dataclass
class SimHumanConfig:
    """A scripted expert standing in for a person who watches and corrects the robot."""

    noise: float = 0.0
    """Sub-optimality: the expert noise of the executed correction (0 = the clean expert)."""
    action_threshold: float = 0.35
    """Take over when the moving average of |policy - expert| (normalized units, mean over Da) exceeds
    this; 0 disables the action rule."""
    action_smoothing: int = 4
    """Steps of the moving average (EMA factor 1 / action_smoothing)."""
    state_key: str = "object_to_goal"
    """Observation key whose norm measures the distance to the goal (m)."""
    state_threshold: float = 0.03
    """Take over when the norm of ``obs[state_key]`` exceeds the episode's best by this much (m); 0 disables."""
    stall_steps: int = 0
    """Take over once this many steps of an episode elapsed (0 disables)."""
    stall_hold: bool = True
    """A takeover for a stall lasts to the end of the episode (False: ``duration`` steps, like the others)."""
    rate: float = 1.0
    """Probability per step of acting on a noticed problem (attention), in (0, 1]."""
    delay: int = 0
    """Steps between deciding to take over and taking control (reaction time)."""
    duration: int = 20
    """Steps a takeover lasts before control goes back to the policy."""
    max_per_episode: int = 0
    """Largest number of takeovers per episode (0: unlimited)."""
    demo_episodes: int = 0
    """The person drives the first this many episodes of the run from start to end (HIL-SERL's initial
    demonstrations; they count as intervention steps)."""
    seed: int = 0
    """Seeds the attention draws and the expert's noise."""

    def validate(self) -> None:
        if self.noise < 0:
            raise ValueError(f"sim_human.noise must be >= 0, got {self.noise}")
        if not 0 < self.rate <= 1:
            raise ValueError(f"sim_human.rate must be in (0, 1], got {self.rate}")
        if self.delay < 0 or self.duration < 1 or self.action_smoothing < 1:
            raise ValueError(f"sim_human needs delay >= 0, duration >= 1 and action_smoothing >= 1, got "
                             f"{self.delay}, {self.duration}, {self.action_smoothing}")
        if min(self.action_threshold, self.state_threshold, self.stall_steps, self.demo_episodes) < 0:
            raise ValueError("sim_human thresholds, stall_steps and demo_episodes must be >= 0")


class SimHuman:
    """A simulated person over ``num_envs`` envs: clean expert ``judge``, noisy expert ``hand``.

    ``low`` / ``high`` are the action bounds ``(Da,)`` used to normalize action differences.
    """

    name = "sim-human"

    def __init__(self, cfg: SimHumanConfig, judge: Policy, hand: Policy, low: np.ndarray, high: np.ndarray,
                 num_envs: int) -> None:
        cfg.validate()
        self.cfg, self.judge, self.hand, self.num_envs = cfg, judge, hand, int(num_envs)
        self.half = np.maximum((np.asarray(high, np.float32) - np.asarray(low, np.float32)) / 2, 1e-8)
        self.rng = np.random.default_rng(cfg.seed)
        b = self.num_envs
        self.phase = np.zeros(b, np.int64)
        self.timer = np.zeros(b, np.int64)
        self.ema = np.zeros(b, np.float32)
        self.best = np.full(b, np.inf, np.float32)
        self.steps = np.zeros(b, np.int64)
        self.count = np.zeros(b, np.int64)
        self.hold = np.zeros(b, bool)
        self.episode = np.arange(b)
        """Index of each env's current episode in the run (for ``demo_episodes``)."""
        self._next_episode = b
        self.last_reason: list[str] = [""] * b

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, np.int64)
        if len(ids) == 0:
            return
        self.phase[ids] = IDLE
        self.timer[ids] = 0
        self.ema[ids] = 0.0
        self.best[ids] = np.inf
        self.steps[ids] = 0
        self.count[ids] = 0
        self.hold[ids] = False
        if env_ids is not None:  # episodes that just ended; None restarts the run's first episodes
            self.episode[ids] = self._next_episode + np.arange(len(ids))
            self._next_episode += len(ids)
        self.judge.reset(ids)
        self.hand.reset(ids)

    def _noticed(self, obs: Mapping[str, np.ndarray], proposed: np.ndarray, expert: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(B,)`` True where a trigger rule fires this step, and ``(B,)`` True where the stall rule does
        (updates the running statistics)."""
        cfg = self.cfg
        diff = np.abs((np.asarray(proposed, np.float32) - expert) / self.half).mean(axis=1)
        self.ema += (diff - self.ema) / cfg.action_smoothing
        fired = np.zeros(self.num_envs, bool)
        if cfg.action_threshold > 0:
            fired |= self.ema > cfg.action_threshold
        if cfg.state_threshold > 0:
            if cfg.state_key not in obs:
                raise KeyError(f"sim_human.state_key {cfg.state_key!r} is not an observation key; "
                               f"the observation has {sorted(obs)}")
            dist = np.linalg.norm(np.asarray(obs[cfg.state_key], np.float32).reshape(self.num_envs, -1), axis=1)
            fired |= dist > self.best + cfg.state_threshold
            self.best = np.minimum(self.best, dist)
        stalled = np.zeros(self.num_envs, bool)
        if cfg.stall_steps > 0:
            stalled = self.steps >= cfg.stall_steps
            fired |= stalled
        if cfg.max_per_episode > 0:
            fired &= self.count < cfg.max_per_episode
        return fired, stalled & fired

    def decide(self, obs: Mapping[str, np.ndarray], proposed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask ``(B,)`` of envs under human control this step and the person's physical action ``(B, Da)``."""
        proposed = np.asarray(proposed, np.float32)
        if proposed.shape[0] != self.num_envs:
            raise ValueError(f"proposed action has batch {proposed.shape[0]}, sim human has {self.num_envs} envs")
        expert = np.asarray(self.judge.act(obs), np.float32)[:, 0]
        hand = np.asarray(self.hand.act(obs), np.float32)[:, 0]
        cfg = self.cfg
        noticed, stalled = self._noticed(obs, proposed, expert)
        attend = self.rng.random(self.num_envs) < cfg.rate
        start = (self.phase == IDLE) & noticed & attend
        self.phase[start] = PENDING
        self.timer[start] = cfg.delay
        self.count[start] += 1
        self.hold[start] = stalled[start] & cfg.stall_hold
        take = (self.phase == PENDING) & (self.timer <= 0)
        self.phase[take] = CONTROL
        self.timer[take] = np.where(self.hold[take], TO_EPISODE_END, cfg.duration)
        self.timer[self.phase == PENDING] -= 1
        demo = self.episode < cfg.demo_episodes  # the person demonstrates these episodes in full
        self.phase[demo], self.hold[demo] = CONTROL, True
        self.timer[demo] = TO_EPISODE_END
        mask = self.phase == CONTROL
        self.timer[mask] -= 1
        done = mask & (self.timer <= 0)
        self.phase[done] = IDLE
        self.ema[done] = 0.0  # judge the policy afresh after handing back
        self.steps += 1
        return mask, hand


class TeleopIntervener:
    """A teleop device (keyboard, gamepad, SpaceMouse) as the intervener of a single env.

    The device's command (``get_action()`` not None) replaces the policy's action. Session events are kept
    for the success labeller: SUCCESS / FAILURE end the episode with that label, QUIT stops the run.
    """

    name = "teleop"

    def __init__(self, device: Any) -> None:
        self.device = device
        self.pending: list[Any] = []
        self.quit = False
        """True once the person pressed QUIT."""
        self.holding = False

    def decide(self, obs: Mapping[str, np.ndarray], proposed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proposed = np.asarray(proposed, np.float32)
        if proposed.shape[0] != 1:
            raise ValueError(f"a teleop device controls one env, got a batch of {proposed.shape[0]}")
        if not self.holding:  # a takeover starts from the policy's gripper state (e.g. holding the peg)
            self.device.gripper = float(proposed[0, -1] >= 0.5)
        command = self.device.get_action()
        self.holding = command is not None
        from robolearn.teleop.base import TeleopEvent

        events = self.device.events()
        self.quit |= TeleopEvent.QUIT in events
        self.pending += events
        if command is None:
            return np.zeros(1, bool), proposed.copy()
        return np.ones(1, bool), np.asarray(command, np.float32).reshape(1, -1)

    def take_events(self) -> list[Any]:
        """Events read from the device since the last call."""
        out, self.pending = self.pending, []
        return out

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        pass
