"""The no-base wrapper for SAC from scratch (RLPD): the actor's action is the normalized env action."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robolearn.refine.common import ActionScaler, episode_ends


class DirectVecEnv:
    """Same-step-autoreset vector env in the refinement wrapper contract (see :mod:`robolearn.refine.common`)."""

    def __init__(self, venv: gym.vector.VectorEnv) -> None:
        self.venv = venv
        self.num_envs = venv.num_envs
        self.scaler = ActionScaler(venv.single_action_space)
        self.action_dim = self.critic_action_dim = int(np.prod(venv.single_action_space.shape))
        self.obs_shapes = {k: tuple(s.shape) for k, s in venv.single_observation_space.spaces.items()}
        self.critic_action_fn = None

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        obs, _ = self.venv.reset(seed=seed)
        return {k: np.asarray(v) for k, v in obs.items()}

    def step(self, action: np.ndarray, override: np.ndarray | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One env step with normalized ``action`` ``(B, Da)`` or the physical ``override`` ``(B, Da)``."""
        executed = np.clip(np.asarray(action, np.float32) if override is None else self.scaler.normalize(override),
                           -1, 1).reshape(self.num_envs, self.action_dim)
        obs, reward, terminated, truncated, infos = self.venv.step(self.scaler.unnormalize(executed))
        _, final, success = episode_ends(obs, terminated, truncated, infos)
        info = {"final_obs": final, "critic_action": executed, "is_success": success}
        return {k: np.asarray(v) for k, v in obs.items()}, reward.astype(np.float32), terminated, truncated, info

    def close(self) -> None:
        self.venv.close()
