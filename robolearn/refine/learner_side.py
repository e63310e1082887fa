"""The learner half of the off-policy loop: replay buffers, the learner, the update rule and the
update-to-data (UTD) accounting, with the state a checkpoint holds.

The loop (:mod:`robolearn.refine.runner`) hands it built transition batches; a method family plugs in how a
batch is routed into the buffers (:data:`Router`) and what one round of updates does (:data:`UpdateRule`).
It runs in the loop's process (``runner="sync"``) or in a learner process of its own (``runner="process"``,
:mod:`robolearn.refine.backends`), which is why it meets the acting side only through batches and weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.replay import Batch, ReplayBuffer

Buffers = dict[str, "ReplayBuffer | None"]
"""Replay buffers by checkpoint name (refinement: ``online`` / ``offline``; HIL: ``online`` / ``demo``)."""

Router = Callable[[Batch, Buffers], None]
"""Adds one built batch (the replay keys plus whatever the sink adds) to the buffers it belongs in."""

UpdateRule = Callable[[OffPolicyLearner, Buffers, int, np.random.Generator], dict[str, float]]
"""``(learner, buffers, n, rng) -> last update's statistics``: the ``n`` owed updates (it may run more, e.g. a
critic warm-up burst, or none, e.g. while its buffer is too small: owed updates it skips are dropped)."""

Weights = dict[str, np.ndarray]
"""An actor state dict as numpy arrays (picklable across processes)."""


@dataclass(frozen=True)
class UpdateClock:
    """When updates are owed: ``updates_per_env_step`` of them per collected transition."""

    updates_per_env_step: float
    random_steps: int = 0
    """No updates are owed before this many env steps (refinement's uniform-action warm-up)."""
    on_arrival: bool = False
    """False: every collect step owes ``updates_per_env_step`` per wrapper transition once the warm-up is over and
    a buffer holds data. True: the env steps collected since the last stored batch are owed when a batch
    arrives (what a learner in another process sees; HIL in either runner)."""


def actor_weights(actor: torch.nn.Module) -> Weights:
    """``actor``'s state dict as numpy arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in actor.state_dict().items()}


class LearnerSide:
    """Buffers, learner, update rule and UTD accounting; ``extra_state`` (e.g. HIL's ``mode``) is saved with
    every checkpoint and must match on restore."""

    def __init__(self, learner: OffPolicyLearner, buffers: Buffers, router: Router, rule: UpdateRule,
                 clock: UpdateClock, rng: np.random.Generator, extra_state: Mapping[str, Any] | None = None) -> None:
        self.learner, self.buffers, self.router, self.rule, self.clock = learner, buffers, router, rule, clock
        self.rng = rng
        self.extra_state = dict(extra_state or {})
        self.counters: dict[str, Any] = {"env_steps": 0, "transitions": 0, "owed": 0.0}
        """env_steps: the collector's count at the last accounting; transitions stored; updates owed."""
        self.last_stats: dict[str, float] = {}

    @property
    def updates(self) -> int:
        return self.learner.num_updates

    def has_data(self) -> bool:
        return any(b is not None and len(b) > 0 for b in self.buffers.values())

    def add(self, batch: Batch) -> None:
        """Route a built batch into the buffers."""
        self.router(batch, self.buffers)
        self.counters["transitions"] += len(batch["reward"])

    def accrue(self, units: int, env_steps: int, arrived: bool) -> bool:
        """Account one collect step (``units`` wrapper transitions, the collector at ``env_steps``; ``arrived``: it
        stored a batch). True when updates were owed by it, i.e. when the caller should :meth:`train`."""
        c = self.counters
        if self.clock.on_arrival:
            if not arrived:
                return False
            c["owed"] += self.clock.updates_per_env_step * max(0, env_steps - c["env_steps"])
            c["env_steps"] = max(c["env_steps"], int(env_steps))
            return True
        c["env_steps"] = int(env_steps)
        if env_steps < self.clock.random_steps or not self.has_data():  # transitions land a few steps late
            return False
        c["owed"] += self.clock.updates_per_env_step * units
        return True

    def train(self, max_updates: int | None = None) -> int:
        """The owed updates (at most ``max_updates``) through the rule; returns how many ran."""
        n = int(self.counters["owed"])
        if max_updates is not None:
            n = min(n, max_updates)
        before = self.updates
        stats = self.rule(self.learner, self.buffers, n, self.rng)
        self.counters["owed"] -= n
        if stats:
            self.last_stats = stats
        return self.updates - before

    def weights(self) -> Weights:
        return actor_weights(self.learner.actor)

    def state(self) -> dict[str, Any]:
        """The learner, its counters and RNG states (a checkpoint adds the loop's own state to it)."""
        return {"learner": self.learner.state_dict(), "learner_counters": dict(self.counters),
                "rng": rng_state(self.rng), "torch_rng": torch.get_rng_state(), **self.extra_state}

    def load_state(self, state: Mapping[str, Any], source: str | Path = "checkpoint") -> None:
        """Restore from :meth:`state` (or a checkpoint written before the loops were one: its ``counters`` hold
        what ``learner_counters`` holds now)."""
        for key, value in self.extra_state.items():
            if state.get(key) != value:
                raise ValueError(f"{source} was written with {key} {state.get(key)!r}, this run has {value!r}")
        self.learner.load_state_dict(state["learner"])
        saved = state.get("learner_counters") or state.get("counters", {})
        self.counters.update({k: saved[k] for k in self.counters if k in saved})
        set_rng_state(self.rng, state["rng"])
        torch.set_rng_state(state["torch_rng"])

    def checkpoint(self, run_dir: str | Path, step: int, loop_state: Mapping[str, Any]) -> Path:
        """Save :meth:`state`, ``loop_state`` and the buffers atomically as checkpoint ``step``."""
        return save_checkpoint(run_dir, step, {**self.state(), **loop_state}, self.buffers)

    def restore(self, run_dir: str | Path) -> dict[str, Any] | None:
        """Load the latest checkpoint of ``run_dir`` (buffers included); its state, or None without one."""
        path = latest_checkpoint(run_dir)
        if path is None:
            return None
        state = load_checkpoint(path, self.buffers)
        self.load_state(state, path)
        return state
