"""Every way to name a policy: ``expert[:noise=X]``, ``random``, ``zero``, or a saved directory.

:func:`load_policy` is the one entry point the CLI, the pipeline and the ROS policy node use. Named
policies return ``(B, 1, Da)`` chunks in the env's physical action units. A saved policy loads its networks
on ``device`` (a device setting, :mod:`robolearn.rl.devices`: ``auto``, ``cpu``, ``cuda[:N]``, ``mps``),
whatever device it was trained on; it takes numpy observations and returns numpy actions there too. The
functions' default is ``cpu`` (a library caller, an exporter, gets what it got before); the configs and
commands default to ``auto`` and pass it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from robolearn.core.batch import batch_size
from robolearn.core.protocols import Obs, Policy
from robolearn.refine.layout import REFINED_FILE
from robolearn.sim.registry import gym_make, load_object, task

if TYPE_CHECKING:
    import torch

    from robolearn.refine.methods import RefineMethod

NAMED_POLICIES = ("expert", "random", "zero")


class RandomPolicy:
    """Uniform samples from the action space (seeded)."""

    noise_shape = None

    def __init__(self, action_space: gym.spaces.Box, seed: int | None = 0):
        self.low, self.high = action_space.low, action_space.high
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        b = batch_size(obs)
        return self.rng.uniform(self.low, self.high, (b, 1, len(self.low))).astype(np.float32)

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        pass


class ZeroPolicy:
    """The action closest to zero inside the action space: no motion, gripper open."""

    noise_shape = None

    def __init__(self, action_space: gym.spaces.Box):
        self.action = np.clip(0.0, action_space.low, action_space.high).astype(np.float32)

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.action, (batch_size(obs), 1, len(self.action))).copy()

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


def load_policy(spec: str | Path, env_id: str, seed: int = 0, methods: Mapping[str, RefineMethod] | None = None,
                device: str | torch.device = "cpu", **load_kwargs: Any) -> Policy:
    """A policy from ``spec``: ``expert[:noise=X]``, ``random``, ``zero``, a refined-policy directory
    (base + the method's actor, from ``robolearn refine`` / ``robolearn hil``; the method named in it is looked
    up in ``methods``, default :data:`~robolearn.refine.methods.METHODS`) or a base-policy checkpoint/run
    directory (``robolearn train``; ``load_kwargs`` such as ``scheduler`` and ``num_inference_steps`` go to it).
    Networks load on ``device`` (a device setting or a ``torch.device``; named policies have none)."""
    name, _, opts = str(spec).partition(":")
    if name in NAMED_POLICIES:
        kwargs: dict[str, Any] = {}
        for item in filter(None, opts.split(",")):
            key, _, value = item.partition("=")
            if key != "noise":
                raise ValueError(f"policy '{spec}': unknown option '{key}' (only noise=<float>)")
            try:
                kwargs["noise"] = float(value)
            except ValueError:
                raise ValueError(f"policy '{spec}': noise must be a number, e.g. {name}:noise=0.5") from None
        return make_policy(name, env_id, action_space(env_id), seed=seed, **kwargs)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"policy '{spec}' is neither a named policy ({', '.join(NAMED_POLICIES)}"
                                "[:noise=X]) nor an existing policy directory")
    if (path / REFINED_FILE).is_file():
        return load_refined(path, env_id, seed, methods, device)
    from robolearn.policies.checkpoint import load
    from robolearn.rl.devices import resolve_device

    return load(path, device=resolve_device(device), **load_kwargs)


def load_refined(directory: str | Path, env_id: str | None = None, seed: int = 0,
                 methods: Mapping[str, RefineMethod] | None = None, device: str | torch.device = "cpu") -> Policy:
    """A refined policy: its base (loaded from the spec saved in it), the saved actor and the method's params,
    put together by the method named in ``refined.yaml``; base and actor on ``device``."""
    from robolearn.refine.methods import get_method
    from robolearn.refine.saved import read_refined
    from robolearn.rl.devices import resolve_device

    meta = read_refined(directory)
    env_id = env_id or meta.env_id
    method = get_method(meta.method, dict(methods) if methods is not None else None)
    params = method.params_type.from_dict(meta.params, f"{Path(directory) / REFINED_FILE} params")
    where = resolve_device(device)
    base = load_policy(meta.base, env_id, seed, methods, where)
    return method.policy(base, method.load_actor(directory, meta, where), action_space(env_id), params)


def action_space(env_id: str) -> gym.spaces.Box:
    """The action space of ``env_id`` (from a throwaway instance)."""
    env = gym_make(env_id)
    try:
        return env.action_space
    finally:
        env.close()
