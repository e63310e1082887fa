"""DSRL (noise-space SAC) as a refinement method: the actor picks the frozen generative base's initial noise
(:mod:`robolearn.refine.noise_steering`)."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from robolearn.core.protocols import Policy
from robolearn.refine.methods.base import MethodParams, OfflineData, RefineMethod
from robolearn.refine.noise_steering import NoiseSteeredPolicy, NoiseSteeringVecEnv
from robolearn.rl.networks import Actor
from robolearn.rl.replay import ReplayBuffer


@dataclass
class NoiseParams(MethodParams):
    """Settings of latent-noise steering (DSRL, DSRL-NA)."""

    bound: float = 1.5
    """The actor's noise lies in [-bound, bound]."""

    def validate(self) -> None:
        if self.bound <= 0:
            raise ValueError(f"bound must be > 0, got {self.bound}")


class DSRLMethod(RefineMethod):
    params_type = NoiseParams
    needs_generative_base = True

    def wrap(self, venv: gym.vector.VectorEnv, base: Policy | None, params: NoiseParams, seed: int
             ) -> NoiseSteeringVecEnv:
        assert base is not None
        return NoiseSteeringVecEnv(venv, base, params.bound)

    def fill_offline(self, env: NoiseSteeringVecEnv, buffer: ReplayBuffer, data: OfflineData) -> None:
        raise ValueError("--demos: DSRL (noise-space SAC) cannot use action demonstrations; use dsrl-na")

    def policy(self, base: Policy, actor: Actor, action_space: gym.spaces.Box, params: NoiseParams) -> Policy:
        return NoiseSteeredPolicy(base, actor, params.bound)
