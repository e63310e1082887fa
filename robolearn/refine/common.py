"""Pieces shared by the refinement wrappers: action scaling and torch observations.

Wrapper contract (what :mod:`robolearn.refine.loop` needs from a wrapper, batched over ``B`` envs):
``obs_shapes`` (learner observation keys -> shapes), ``action_dim`` (actor output, in ``[-1, 1]``),
``critic_action_dim`` and ``critic_action_fn`` (see :class:`~robolearn.rl.learner.OffPolicyLearner`),
``venv`` (the wrapped vector env), ``reset(seed) -> obs`` and ``step(actor_action, override=None) -> (obs,
reward, terminated, truncated, info)`` where ``info["final_obs"]`` is the learner observation of every env
(the final one where an episode ended), ``info["critic_action"]`` ``(B, Dc)`` is what replay stores and
``info["is_success"]`` ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np
import torch


class ActionScaler:
    """Affine map between physical actions and the normalized range ``[-1, 1]`` of a Box."""

    def __init__(self, space: gym.spaces.Box) -> None:
        if not isinstance(space, gym.spaces.Box) or not np.all(np.isfinite(space.low) & np.isfinite(space.high)):
            raise ValueError(f"refinement needs a bounded Box action space, got {space}")
        self.low, self.high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.center = (self.high + self.low) / 2
        self.half = np.maximum((self.high - self.low) / 2, 1e-8)

    def normalize(self, action: np.ndarray) -> np.ndarray:
        return ((np.asarray(action, np.float32) - self.center) / self.half).astype(np.float32)

    def unnormalize(self, action: np.ndarray) -> np.ndarray:
        return np.clip(self.center + self.half * np.asarray(action, np.float32), self.low, self.high)


def torch_obs(obs: Mapping[str, np.ndarray], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """A numpy observation batch as tensors on ``device`` (the CPU when None; same keys)."""
    return {k: torch.as_tensor(np.asarray(v), device=device) for k, v in obs.items()}


def episode_ends(obs: Mapping[str, np.ndarray], terminated: np.ndarray, truncated: np.ndarray,
                 infos: Mapping[str, object]) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """What a vector env's step says about ended episodes (gymnasium's same-step autoreset).

    Returns ``done`` ``(B,)``, the final observations (a copy of ``obs`` with each ended env's
    ``infos["final_obs"][i]`` in its row) and ``success`` ``(B,)`` (``is_success`` of ended envs, else False).
    """
    done = np.logical_or(terminated, truncated)
    final = {k: np.array(v, copy=True) for k, v in obs.items()}
    success = np.zeros(len(done), bool)
    if done.any():
        for i in np.nonzero(done)[0]:
            for k in final:
                final[k][i] = infos["final_obs"][i][k]  # type: ignore[index]
        success[done] = np.asarray(infos["final_info"]["is_success"])[done]  # type: ignore[index]
    return done, final, success

