"""DSRL latent-noise steering: the actor chooses the initial noise of a frozen generative base policy.

The wrapper's action is the base's noise, flattened and normalized: ``noise = bound * a`` with
``a in [-1, 1]^(prod(noise_shape))`` (default ``bound = 1.5``). One wrapper step denoises it into a chunk
``(B, Ta, Da)`` through the black-box ``base.act(obs, noise)`` and executes the ``Ta`` actions. The reward
is the sum of the chunk's rewards; ``gamma`` applies per chunk. An env whose episode ends mid-chunk starts
its next episode at once and holds the no-op action (zero motion, clipped into the action space) for
the rest of the chunk. ``info["chunk"]`` ``(B, Ta * Da)`` holds the executed chunk, normalized, for DSRL-NA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robolearn.core.batch import batch_size
from robolearn.core.protocols import Obs, Policy
from robolearn.refine.common import ActionScaler, torch_obs
from robolearn.rl.devices import module_device
from robolearn.rl.networks import Actor


def check_generative(base: Policy) -> tuple[int, ...]:
    """The base's ``noise_shape``; a clear error for a non-generative base."""
    shape = getattr(base, "noise_shape", None)
    if not shape:
        raise ValueError(f"DSRL needs a generative base policy with a noise_shape; {type(base).__name__} has "
                         "none (use --method residual for deterministic bases)")
    return tuple(int(d) for d in shape)


def probe_chunk_dim(venv: gym.vector.VectorEnv, base: Policy, seed: int) -> int:
    """``Ta * Da``: the size of one executed chunk of the generative ``base``, measured on a zero-noise chunk
    after a reset of ``venv`` seeded ``seed`` (the base is reset before and after)."""
    noise_shape = check_generative(base)
    obs, _ = venv.reset(seed=seed)
    base.reset()
    chunk = np.asarray(base.act(obs, np.zeros((venv.num_envs, *noise_shape), np.float32)))
    base.reset()
    return int(np.prod(chunk.shape[1:]))


class NoiseSteeringVecEnv:
    """Vector-env wrapper whose action is the base policy's initial noise (see module docstring)."""

    def __init__(self, venv: gym.vector.VectorEnv, base: Policy, bound: float = 1.5,
                 chunk_dim: int | None = None) -> None:
        if bound <= 0:
            raise ValueError(f"noise bound must be > 0, got {bound}")
        self.venv, self.base, self.bound = venv, base, float(bound)
        self.noise_shape = check_generative(base)
        self.num_envs = venv.num_envs
        self.scaler = ActionScaler(venv.single_action_space)
        self.action_dim = int(np.prod(self.noise_shape))
        self.store_chunks = chunk_dim is not None
        """DSRL-NA: replay stores the executed chunk ``(Ta * Da,)`` instead of the noise."""
        self.critic_action_dim = int(chunk_dim) if chunk_dim is not None else self.action_dim
        self.obs_shapes = {k: tuple(s.shape) for k, s in venv.single_observation_space.spaces.items()}
        self.critic_action_fn = None
        self.noop = np.clip(0.0, self.scaler.low, self.scaler.high).astype(np.float32)
        self._obs: dict[str, np.ndarray] = {}

    def noise(self, action: np.ndarray) -> np.ndarray:
        """Actor action ``(B, Dn)`` in ``[-1, 1]`` -> base noise ``(B, *noise_shape)``."""
        a = np.clip(np.asarray(action, np.float32), -1, 1)
        return (self.bound * a).reshape(len(a), *self.noise_shape)

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        obs, _ = self.venv.reset(seed=seed)
        self.base.reset()
        self._obs = {k: np.asarray(v) for k, v in obs.items()}
        return dict(self._obs)

    def step(self, action: np.ndarray, override: np.ndarray | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Execute one chunk: denoised from ``action`` or the physical ``override`` ``(B, Ta, Da)``."""
        action = np.asarray(action, np.float32).reshape(self.num_envs, self.action_dim)
        chunk = override if override is not None else self.base.act(self._obs, self.noise(action))
        chunk = np.asarray(chunk, np.float32)
        if chunk.ndim != 3 or chunk.shape[0] != self.num_envs:
            raise ValueError(f"base.act must return (B, Ta, Da), got shape {chunk.shape}")
        b = self.num_envs
        reward, terminated, truncated = np.zeros(b, np.float32), np.zeros(b, bool), np.zeros(b, bool)
        done, success = np.zeros(b, bool), np.zeros(b, bool)
        ended_obs: dict[int, Obs] = {}
        obs = self._obs
        for t in range(chunk.shape[1]):
            act = np.where(done[:, None], self.noop, chunk[:, t])
            obs, r, te, tr, infos = self.venv.step(act)
            ended = (te | tr) & ~done
            reward += np.where(done, 0.0, r).astype(np.float32)
            if ended.any():
                for i in np.nonzero(ended)[0]:
                    ended_obs[int(i)] = infos["final_obs"][i]
                success[ended] = np.asarray(infos["final_info"]["is_success"])[ended]
                terminated |= te & ended
                truncated |= tr & ended
                done |= ended
            if t < chunk.shape[1] - 1 and hasattr(self.base, "observe"):
                self.base.observe(obs)  # the base's history holds consecutive steps
        self._obs = {k: np.asarray(v) for k, v in obs.items()}
        final_obs = {k: np.array(v, copy=True) for k, v in self._obs.items()}
        for i, last in ended_obs.items():
            for k in final_obs:
                final_obs[k][i] = last[k]
        if done.any():
            self.base.reset(np.nonzero(done)[0])
        norm_chunk = np.clip(self.scaler.normalize(chunk), -1, 1).reshape(b, -1)
        stored = norm_chunk if self.store_chunks else action
        info = {"final_obs": final_obs, "critic_action": stored, "is_success": success, "chunk": norm_chunk,
                "env_steps": chunk.shape[1] * b, "noise_abs": float(np.abs(action).mean() * self.bound)}
        return dict(self._obs), reward, terminated, truncated, info

    def close(self) -> None:
        self.venv.close()


class NoiseSteeredPolicy:
    """Base policy steered by a noise actor, as one deterministic :class:`~robolearn.core.protocols.Policy`."""

    noise_shape = None

    def __init__(self, base: Policy, actor: Actor, bound: float) -> None:
        self.base, self.actor, self.bound = base, actor, float(bound)
        self.base_noise_shape = check_generative(base)
        self._device = module_device(actor)

    @torch.no_grad()
    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        """``(B, Ta, Da)`` physical chunk of the base denoising the actor's noise (``noise`` is ignored); the actor
        runs on its device, observations in and the chunk out as numpy."""
        a = self.actor.mode(torch_obs(obs, self._device)).cpu().numpy()
        return self.base.act(obs, (self.bound * a).reshape(len(a), *self.base_noise_shape))

    def observe(self, obs: Obs) -> None:
        """Intermediate observations of an executed chunk go to the base's history."""
        if hasattr(self.base, "observe"):
            self.base.observe(obs)

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        self.base.reset(env_ids)


class ZeroNoisePolicy:
    """A generative base that always denoises from zero noise: the deterministic baseline DSRL starts from.

    A diffusion policy sampled from its noise prior's mode (zero) often succeeds more than with random
    noise; a DSRL actor whose noise head starts at zero starts here, so its gain is measured against this.
    """

    noise_shape = None

    def __init__(self, base: Policy) -> None:
        self.base = base
        self.base_noise_shape = check_generative(base)
        if callable(getattr(base, "infer", None)):  # a chunk policy's tensor-level act, from zero noise too
            self.infer = self._infer_from_zero

    def _infer_from_zero(self, history: Mapping[str, torch.Tensor], noise: torch.Tensor | None = None
                         ) -> torch.Tensor:
        """The base's ``infer`` from zero noise: history ``{key: (B, To, *shape)}`` -> ``(B, Ta, Da)``
        (``noise`` is ignored). With it, demonstration relabelling batches episodes side by side."""
        first = next(iter(history.values()))
        zero = torch.zeros((first.shape[0], *self.base_noise_shape), device=first.device)
        return self.base.infer(history, zero)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The base's observation keys and per-frame shapes (None when it does not say)."""
        return getattr(self.base, "shapes", None)

    def image_features(self, obs: Obs) -> np.ndarray:
        """The base's frozen camera features ``(B, F)`` (``ChunkPolicy.image_features``)."""
        return self.base.image_features(obs)

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        """``(B, Ta, Da)`` physical chunk of the base from zero noise (``noise`` is ignored)."""
        return self.base.act(obs, np.zeros((batch_size(obs), *self.base_noise_shape), np.float32))

    def observe(self, obs: Obs) -> None:
        if hasattr(self.base, "observe"):
            self.base.observe(obs)

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        self.base.reset(env_ids)
