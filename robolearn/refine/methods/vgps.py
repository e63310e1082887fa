"""V-GPS (value-guided policy steering) as a refinement method: ``K`` chunks drawn from the frozen generative
base, the one a learned Q-function ranks best executed (:mod:`robolearn.refine.value_guided`). The
Q-function learns from the demonstrations (cut into executed-chunk transitions, as DSRL-NA's) and from the
loop's own rollouts; the base gets no gradient and needs no noise interface beyond ``act(obs, noise)``.
Extra inference per chunk: ``K`` base samples in one batched call plus ``K`` critic evaluations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from robolearn.core.protocols import Policy
from robolearn.refine.methods.base import MethodParams, OfflineData, RefineMethod
from robolearn.refine.noise_steering import probe_chunk_dim
from robolearn.refine.value_guided import (
    CandidateScorer,
    TiledBase,
    ValueGuidedLearner,
    ValueGuidedPolicy,
    ValueGuidedVecEnv,
    load_scorer,
)
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.replay import ReplayBuffer


@dataclass
class VGPSParams(MethodParams):
    """Settings of value-guided policy steering."""

    candidates: int = 8
    """``K``: chunks drawn from the base per replan (one batched base call of ``B * K`` samples)."""
    noise_scale: float = 1.0
    """Standard deviation of the candidates' initial noise (1: the base's own prior)."""
    include_zero: bool = True
    """One candidate always denoises from zero noise (the deterministic base is among the choices)."""
    expectile: float = 0.9
    """Expectile of Q that V(s) fits (IQL; 0.5: the mean over the data's chunks, towards 1: their best)."""
    epsilon: float = 0.1
    """While collecting: probability of executing a uniformly random candidate instead of the best-ranked."""

    def validate(self) -> None:
        if not 2 <= self.candidates <= 256:
            raise ValueError(f"candidates must be in 2..256, got {self.candidates}")
        if self.noise_scale < 0:
            raise ValueError(f"noise_scale must be >= 0, got {self.noise_scale}")
        if not 0.5 <= self.expectile < 1:
            raise ValueError(f"expectile must be in [0.5, 1), got {self.expectile}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")


class VGPSMethod(RefineMethod):
    params_type = VGPSParams
    needs_generative_base = True
    demos_by_default = True

    def wrap(self, venv: gym.vector.VectorEnv, base: Policy | None, params: VGPSParams, seed: int
             ) -> ValueGuidedVecEnv:
        """The candidate wrapper; one zero-noise chunk of a probing reset (seeded ``seed``) measures a chunk."""
        assert base is not None
        chunk_dim = probe_chunk_dim(venv, base, seed)
        tiled = TiledBase(base, params.candidates, params.noise_scale, params.include_zero, seed)
        return ValueGuidedVecEnv(venv, tiled, chunk_dim, params)

    def learner(self, lcfg: LearnerConfig, env: ValueGuidedVecEnv, seed: int, device: str | torch.device
                ) -> OffPolicyLearner:
        return ValueGuidedLearner(lcfg, env.obs_shapes, env.action_dim, env.critic_action_dim,
                                  env.params.expectile, env.params.epsilon, seed=seed, device=device)

    def fill_offline(self, env: ValueGuidedVecEnv, buffer: ReplayBuffer, data: OfflineData) -> None:
        """Single-step demonstrations cut into executed-chunk transitions (as DSRL-NA's)."""
        from robolearn.refine.chunk_data import fill_chunk_offline

        fill_chunk_offline(env, buffer, data)

    def load_actor(self, directory: str | Path, meta: Any, device: str | torch.device = "cpu") -> CandidateScorer:
        """The saved Q-function as a :class:`CandidateScorer`, in eval mode on ``device``."""
        from robolearn.refine.layout import ACTOR_FILE
        from robolearn.rl.devices import resolve_device

        where = resolve_device(device)
        state = torch.load(Path(directory) / ACTOR_FILE, map_location=where, weights_only=True)
        return load_scorer(state, meta.obs_shapes, meta.action_dim, meta.hidden).to(where)

    def policy(self, base: Policy, actor: Any, action_space: gym.spaces.Box, params: VGPSParams) -> Policy:
        return ValueGuidedPolicy(base, actor, action_space, params.noise_scale, params.include_zero)
