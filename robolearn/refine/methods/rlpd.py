"""RLPD as a refinement method: SAC from scratch on the env's own actions (no base; nothing to save as a
refined policy), demonstrations in the offline buffer."""

from __future__ import annotations

import gymnasium as gym

from robolearn.core.protocols import Policy
from robolearn.refine.direct import DirectVecEnv
from robolearn.refine.methods.base import RefineMethod
from robolearn.rl.networks import Actor


class RLPDMethod(RefineMethod):
    needs_base = False

    def wrap(self, venv: gym.vector.VectorEnv, base: Policy | None, params: object, seed: int) -> DirectVecEnv:
        return DirectVecEnv(venv)

    def policy(self, base: Policy, actor: Actor, action_space: gym.spaces.Box, params: object) -> Policy:
        raise ValueError("rlpd learns from scratch: it saves no refined policy to load")
