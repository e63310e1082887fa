"""Who picks the collect actions in the off-policy loop: the learner itself, or a snapshot of its actor.

* :class:`LearnerActing`: the learner's current actor, exploring with the loop's sampling RNG (refinement).
* :class:`SnapshotActing`: a copy of the actor that changes only when the learner publishes weights (every
  ``publish_every`` updates), with RNGs of its own. A learner in another process can only be acted on this
  way; HIL uses it in both runners, and a dead learner leaves it acting on the last weights it received.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from robolearn.refine.learner_side import Weights
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.networks import Actor


class Acting(Protocol):
    """What the loop acts and evaluates with."""

    takes_weights: bool
    """Its weights come from the learner side's publications (False: it is the learner)."""
    rng: np.random.Generator
    """Draws the uniform warm-up actions."""

    @property
    def version(self) -> int:
        """Update count of the weights it acts on."""

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool, rng: Any = None) -> np.ndarray: ...

    def load_weights(self, weights: Weights, version: int) -> None: ...

    def actor_state(self) -> dict[str, torch.Tensor]:
        """A copy of the actor's state dict (the best evaluated actor)."""


class LearnerActing:
    """Acts with ``learner`` (always its latest weights); ``rng`` is shared with the updates' sampling."""

    takes_weights = False

    def __init__(self, learner: OffPolicyLearner, rng: np.random.Generator) -> None:
        self.learner, self.rng = learner, rng

    @property
    def version(self) -> int:
        return self.learner.num_updates

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool, rng: Any = None) -> np.ndarray:
        """Actor action ``(B, Da)`` in ``[-1, 1]``."""
        return self.learner.act(obs, deterministic=deterministic, rng=self.rng)

    def load_weights(self, weights: Weights, version: int) -> None:
        """Nothing to load: it is the learner."""

    def actor_state(self) -> dict[str, torch.Tensor]:
        return copy.deepcopy(self.learner.actor.state_dict())


class SnapshotActing:
    """A local actor network loaded from published weights; ``seed`` seeds its exploration."""

    takes_weights = True

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int, hidden: Sequence[int],
                 stochastic: bool, exploration_noise: float, seed: int) -> None:
        self.net = Actor(obs_shapes, action_dim, hidden, stochastic, zero_init_last=True)
        self.net.eval()
        self.exploration_noise = exploration_noise
        self.version = -1
        """Update count of the weights it acts on (-1: none received yet)."""
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def load_weights(self, weights: Weights, version: int) -> None:
        self.net.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
        self.version = int(version)

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool, rng: Any = None) -> np.ndarray:
        """Actor action ``(B, Da)`` in ``[-1, 1]`` (TD3: Gaussian exploration noise; SAC: a sample)."""
        t = {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}
        if deterministic or not self.net.stochastic:
            a = self.net.mode(t).numpy()
            if not deterministic:
                a = np.clip(a + self.rng.normal(0, self.exploration_noise, a.shape), -1, 1)
            return a.astype(np.float32)
        return self.net.sample(t, self.gen)[0].numpy()

    def actor_state(self) -> dict[str, torch.Tensor]:
        return copy.deepcopy(self.net.state_dict())
