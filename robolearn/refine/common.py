"""Pieces shared by the refinement wrappers: action scaling, base loading, refined-policy files.

Wrapper contract (what :mod:`robolearn.refine.loop` needs from a wrapper, batched over ``B`` envs):
``obs_shapes`` (learner observation keys -> shapes), ``action_dim`` (actor output, in ``[-1, 1]``),
``critic_action_dim`` and ``critic_action_fn`` (see :class:`~robolearn.rl.learner.OffPolicyLearner`),
``reset(seed) -> obs`` and ``step(actor_action, override=None) -> (obs, reward, terminated, truncated,
info)`` where ``info["final_obs"]`` is the learner observation of every env (the final one where an episode
ended), ``info["critic_action"]`` ``(B, Dc)`` is what replay stores and ``info["is_success"]`` ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml

from robolearn.core.protocols import Policy
from robolearn.refine.layout import ACTOR_FILE, REFINED_FILE
from robolearn.rl.networks import Actor
from robolearn.sim.registry import gym_make


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


def load_base(spec: str, env_id: str, action_space: gym.spaces.Box, seed: int = 0) -> Policy:
    """A base policy from ``spec`` (see :func:`robolearn.policy_factory.load_policy`)."""
    from robolearn.policy_factory import load_policy

    return load_policy(spec, env_id, seed=seed)


def batch_size(obs: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(obs.values())))


def torch_obs(obs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}


def save_refined(directory: str | Path, method: str, base_spec: str, env_id: str, actor: Actor,
                 obs_shapes: Mapping[str, Any], hidden: list[int], params: Mapping[str, Any]) -> Path:
    """Write a refined policy (base spec + actor weights) that :func:`load_refined` rebuilds."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": "robolearn.refined/1", "method": method, "base": base_spec, "env_id": env_id,
            "obs_shapes": {k: list(v) for k, v in obs_shapes.items()}, "action_dim": actor.action_dim,
            "stochastic": actor.stochastic, "hidden": list(hidden), "params": dict(params)}
    tmp = directory / (ACTOR_FILE + ".tmp")
    torch.save(actor.state_dict(), tmp)
    tmp.replace(directory / ACTOR_FILE)
    (directory / REFINED_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return directory


def load_refined(directory: str | Path, env_id: str | None = None, seed: int = 0) -> Policy:
    """Rebuild a refined :class:`Policy` (base + residual actor, or base + noise actor) from its directory."""
    directory = Path(directory)
    meta = yaml.safe_load((directory / REFINED_FILE).read_text())
    if meta.get("format") != "robolearn.refined/1":
        raise ValueError(f"{directory / REFINED_FILE}: not a robolearn refined policy")
    env_id = env_id or meta["env_id"]
    actor = Actor(meta["obs_shapes"], meta["action_dim"], meta["hidden"], meta["stochastic"])
    actor.load_state_dict(torch.load(directory / ACTOR_FILE, map_location="cpu"))
    actor.eval()
    space = _action_space(env_id)
    base = load_base(meta["base"], env_id, space, seed)
    if meta["method"] == "residual":
        from robolearn.refine.residual import ResidualPolicy

        return ResidualPolicy(base, actor, space, meta["params"]["scale"], int(meta["params"].get("plan_steps", 0)))
    from robolearn.refine.noise_steering import NoiseSteeredPolicy

    return NoiseSteeredPolicy(base, actor, float(meta["params"]["bound"]))


def _action_space(env_id: str) -> gym.spaces.Box:
    env = gym_make(env_id)
    try:
        return env.action_space
    finally:
        env.close()
