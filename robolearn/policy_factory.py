"""Every way to name a policy: ``expert[:noise=X]``, ``random``, ``zero``, or a saved directory.

:func:`load_policy` is the one entry point the CLI, the pipeline and the ROS policy node use. Named
policies return ``(B, 1, Da)`` chunks in the env's physical action units.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robolearn.core.protocols import Obs, Policy
from robolearn.sim.registry import gym_make, load_object, task

NAMED_POLICIES = ("expert", "random", "zero")


def _batch_size(obs: Obs) -> int:
    return len(next(iter(obs.values())))


class RandomPolicy:
    """Uniform samples from the action space (seeded)."""

    noise_shape = None

    def __init__(self, action_space: gym.spaces.Box, seed: int | None = 0):
        self.low, self.high = action_space.low, action_space.high
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        b = _batch_size(obs)
        return self.rng.uniform(self.low, self.high, (b, 1, len(self.low))).astype(np.float32)

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        pass


class ZeroPolicy:
    """The action closest to zero inside the action space: no motion, gripper open."""

    noise_shape = None

    def __init__(self, action_space: gym.spaces.Box):
        self.action = np.clip(0.0, action_space.low, action_space.high).astype(np.float32)

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.action, (_batch_size(obs), 1, len(self.action))).copy()

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        pass


def make_policy(name: str, env_id: str, action_space: gym.spaces.Box, noise: float = 0.0,
                seed: int | None = 0) -> Policy:
    """Build a named policy for ``env_id``; the error lists the names."""
    if name == "expert":
        return load_object(task(env_id).expert)(noise=noise, seed=seed)
    if name == "random":
        return RandomPolicy(action_space, seed)
    if name == "zero":
        return ZeroPolicy(action_space)
    raise ValueError(f"unknown policy '{name}'; choose from {', '.join(NAMED_POLICIES)}")


def load_policy(spec: str | Path, env_id: str, seed: int = 0, **load_kwargs: Any) -> Policy:
    """A policy from ``spec``: ``expert[:noise=X]``, ``random``, ``zero``, a refined-policy directory
    (base + residual or noise actor, from ``robolearn refine``) or a base-policy checkpoint/run directory
    (``robolearn train``; ``load_kwargs`` such as ``scheduler`` and ``num_inference_steps`` go to it)."""
    name, _, opts = str(spec).partition(":")
    if name in NAMED_POLICIES:
        kwargs: dict[str, Any] = {}
        for item in filter(None, opts.split(",")):
            key, _, value = item.partition("=")
            if key != "noise":
                raise ValueError(f"policy '{spec}': unknown option '{key}' (only noise=<float>)")
            kwargs["noise"] = float(value)
        space = gym_make(env_id).action_space
        return make_policy(name, env_id, space, seed=seed, **kwargs)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"policy '{spec}' is neither a named policy ({', '.join(NAMED_POLICIES)}"
                                "[:noise=X]) nor an existing policy directory")
    from robolearn.refine.common import REFINED_FILE, load_refined

    if (path / REFINED_FILE).is_file():
        return load_refined(path, env_id, seed)
    from robolearn.policies.checkpoint import load

    return load(path, **load_kwargs)
