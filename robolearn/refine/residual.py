"""Residual RL (ResFiT): a bounded correction on top of a frozen base policy, as a vector-env wrapper.

The base chunk ``(B, Ta, Da)`` is executed step by step; all envs replan together when the chunk runs out
or an episode ends (replanning early is always valid for a chunking policy). At each step the residual
actor sees the env observation plus ``base_action`` (the current base action, normalized to ``[-1, 1]``)
and outputs ``a in [-1, 1]^Da``; the executed normalized action is ``clip(base_action + scale * a, -1, 1)``
(``scale`` is a fraction of the normalized range, one for all dimensions or one per dimension; the actor's
tanh makes the correction ``scale * tanh(.)``). The critic scores the executed action, so demonstrations and
interventions are stored with the action that was really executed.

With ``plan_steps = K > 0`` actor and critic also see ``base_plan``: the base's next ``K`` actions of the
current chunk (normalized), each with a 1 that marks it as planned, zeros past the chunk's end. The base's
remaining chunk is part of the residual MDP's state (it decides the next actions); without it the critic
averages over the chunks the base might still be executing.

With ``features`` (a camera base's frozen :meth:`~robolearn.policies.base.ChunkPolicy.image_features`) actor and
critic see ``base_features`` ``(F,)``, the base's CNN features of the current frames, in place of the
``pixels/<camera>`` frames: no image encoder to train, and replay holds F floats instead of the images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robolearn.core.batch import batch_size
from robolearn.core.protocols import Obs, Policy
from robolearn.refine.common import ActionScaler, episode_ends, torch_obs
from robolearn.rl.devices import module_device
from robolearn.rl.networks import Actor

BASE_KEY = "base_action"
PLAN_KEY = "base_plan"
FEATURES_KEY = "base_features"
BASE_KEYS = (BASE_KEY, PLAN_KEY, FEATURES_KEY)
"""Inputs the residual adds to the env's observation (none of them an env observation)."""

Features = Callable[[Obs], np.ndarray]
"""``{pixels/<camera>: (B, H, W, 3)} -> (B, F)`` float32: a camera base's frozen image features."""


def is_frame(key: str) -> bool:
    """Camera frames: ``pixels/<camera>`` (replaced by ``base_features`` when the residual reads those)."""
    return key.startswith("pixels")


def with_features(obs: Mapping[str, np.ndarray], features: Features) -> dict[str, np.ndarray]:
    """``obs`` with its camera frames replaced by ``base_features`` ``(B, F)`` computed from them."""
    return {**{k: v for k, v in obs.items() if not is_frame(k)}, FEATURES_KEY: features(obs)}


def plan_dim(plan_steps: int, action_dim: int) -> int:
    """Width of the ``base_plan`` observation: ``plan_steps`` rows of ``action_dim`` actions plus a flag."""
    return plan_steps * (action_dim + 1)


def normalized_chunk(chunk: np.ndarray, scaler: ActionScaler) -> np.ndarray:
    """The physical chunk ``(B, Ta, Da)`` clipped to the action bounds and normalized to ``[-1, 1]``."""
    return np.clip(scaler.normalize(np.clip(chunk, scaler.low, scaler.high)), -1.0, 1.0)


def base_plan(chunk_norm: np.ndarray, index: int, plan_steps: int) -> np.ndarray:
    """``(B, plan_steps * (Da + 1))``: the actions after ``index`` of the normalized chunk ``(B, Ta, Da)``,
    each followed by a 1, row-major; rows past the chunk's end are all zero."""
    b, _, da = chunk_norm.shape
    plan = np.zeros((b, plan_steps, da + 1), np.float32)
    upcoming = chunk_norm[:, index + 1 : index + 1 + plan_steps]
    plan[:, : upcoming.shape[1], :da] = upcoming
    plan[:, : upcoming.shape[1], da] = 1.0
    return plan.reshape(b, -1)


def base_inputs(chunk_norm: np.ndarray, index: int, plan_steps: int) -> dict[str, np.ndarray]:
    """The base's part of the learner observation at action ``index`` of the normalized chunk ``(B, Ta, Da)``:
    ``base_action`` ``(B, Da)`` and, with ``plan_steps > 0``, ``base_plan`` (see :func:`base_plan`)."""
    inputs = {BASE_KEY: chunk_norm[:, index].copy()}
    if plan_steps:
        inputs[PLAN_KEY] = base_plan(chunk_norm, index, plan_steps)
    return inputs


def residual_scales(scale: float | Sequence[float], action_dim: int) -> np.ndarray:
    """The largest correction per action dimension, ``(Da,)`` fractions of the normalized range, from one
    fraction for all dimensions or a list of ``Da``; each must lie in (0, 2]."""
    scales = np.asarray(scale, np.float32)
    if scales.ndim > 1 or (scales.ndim == 1 and scales.shape[0] != action_dim):
        raise ValueError(f"residual scale must be one number or {action_dim} (one per action dimension), "
                         f"got {np.asarray(scale).tolist()}")
    if not np.all((scales > 0) & (scales <= 2)):
        raise ValueError(f"residual scale must be in (0, 2], got {np.asarray(scale).tolist()}")
    return np.broadcast_to(scales, (action_dim,)).copy()


def residual_critic_action(obs: Mapping[str, torch.Tensor], action: torch.Tensor,
                           scale: float | torch.Tensor) -> torch.Tensor:
    """Executed normalized action ``(B, Da)`` of residual ``action`` ``(B, Da)``: ``base + scale * action``,
    clipped to ``[-1, 1]`` (``scale`` one number or ``(Da,)``). Module-level so that a learner process (HIL)
    can rebuild it without an env."""
    return (obs[BASE_KEY] + scale * action).clamp(-1.0, 1.0)


class ResidualVecEnv:
    """Wraps a same-step-autoreset vector env and a frozen base policy; the action is the residual."""

    def __init__(self, venv: gym.vector.VectorEnv, base: Policy, scale: float | Sequence[float] = 0.1,
                 plan_steps: int = 0, features: Features | None = None) -> None:
        if plan_steps < 0:
            raise ValueError(f"residual plan_steps must be >= 0 (0: the current base action only), got {plan_steps}")
        self.venv, self.base, self.plan_steps, self.features = venv, base, int(plan_steps), features
        self.num_envs = venv.num_envs
        self.scaler = ActionScaler(venv.single_action_space)
        self.action_dim = self.critic_action_dim = int(np.prod(venv.single_action_space.shape))
        self.scale = residual_scales(scale, self.action_dim)
        self._scale_t = torch.as_tensor(self.scale)
        spaces = venv.single_observation_space.spaces
        self.obs_shapes = {k: tuple(s.shape) for k, s in spaces.items()} | {BASE_KEY: (self.action_dim,)}
        if self.plan_steps:
            self.obs_shapes[PLAN_KEY] = (plan_dim(self.plan_steps, self.action_dim),)
        if features is not None:
            frames = {k: np.zeros((1, *s), np.uint8) for k, s in self.obs_shapes.items() if is_frame(k)}
            self.obs_shapes = {k: s for k, s in self.obs_shapes.items() if not is_frame(k)}
            self.obs_shapes[FEATURES_KEY] = (int(features(frames).shape[-1]),)
        self._chunk: np.ndarray | None = None
        self._index = 0
        self._base_phys = np.zeros((self.num_envs, self.action_dim), np.float32)
        self._inputs = {k: np.zeros((self.num_envs, *self.obs_shapes[k]), np.float32)
                        for k in (BASE_KEY, PLAN_KEY) if k in self.obs_shapes}
        """The base's part of the current learner observation (:func:`base_inputs`)."""

    @property
    def _base_norm(self) -> np.ndarray:
        """The current base action ``(B, Da)``, normalized."""
        return self._inputs[BASE_KEY]

    def critic_action_fn(self, obs: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """Executed normalized action ``(B, Da)`` for residual ``action`` ``(B, Da)``."""
        return residual_critic_action(obs, action, self._scale_t.to(action.device))

    def correct(self, base_phys: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Physical executed action ``(B, Da)``: ``base + scale * half_range * clip(action)``, clipped to bounds.

        Computed in physical units so that a zero residual executes the base action bit for bit.
        """
        delta = self.scale * self.scaler.half * np.clip(np.asarray(action, np.float32), -1, 1)
        return np.clip(base_phys + delta, self.scaler.low, self.scaler.high).astype(np.float32)

    def _augment(self, obs: Obs) -> dict[str, np.ndarray]:
        if self._chunk is None or self._index >= self._chunk.shape[1]:
            self._chunk = np.asarray(self.base.act(obs), np.float32)
            if self._chunk.ndim != 3 or self._chunk.shape[0] != self.num_envs:
                raise ValueError(f"base.act must return (B, Ta, Da), got shape {self._chunk.shape}")
            self._index = 0
        elif hasattr(self.base, "observe"):  # keep the base's observation history step by step
            self.base.observe(obs)
        self._base_phys = np.clip(self._chunk[:, self._index], self.scaler.low, self.scaler.high)
        self._inputs = base_inputs(normalized_chunk(self._chunk, self.scaler), self._index, self.plan_steps)
        out = {**{k: np.asarray(v) for k, v in obs.items()}, **self._inputs}
        return with_features(out, self.features) if self.features is not None else out

    def _final_features(self, final: dict[str, np.ndarray], done: np.ndarray,
                        next_obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The final observations with ``base_features`` in place of frames: computed from the final frames of
        the envs that ended (``done`` ``(B,)``), the next observation's for the others (they are the same)."""
        features = np.array(next_obs[FEATURES_KEY], copy=True)
        if done.any():
            features[done] = self.features({k: v[done] for k, v in final.items() if is_frame(k)})
        return {**{k: v for k, v in final.items() if not is_frame(k)}, FEATURES_KEY: features}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        obs, _ = self.venv.reset(seed=seed)
        self.base.reset()
        self._chunk = None
        return self._augment(obs)

    def step(self, action: np.ndarray, override: np.ndarray | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Execute ``base + scale * action`` (or the physical ``override`` ``(B, Da)``) for one env step."""
        action = np.asarray(action, np.float32).reshape(self.num_envs, self.action_dim)
        physical = override if override is not None else self.correct(self._base_phys, action)
        physical = np.clip(np.asarray(physical, np.float32), self.scaler.low, self.scaler.high)
        executed = np.clip(self.scaler.normalize(physical), -1, 1)
        prev = self._inputs  # _augment() below replaces it, never writes into it
        obs, reward, terminated, truncated, infos = self.venv.step(physical)
        done, final, success = episode_ends(obs, terminated, truncated, infos)
        if done.any():
            self.base.reset(np.nonzero(done)[0])
            self._chunk = None
        else:
            self._index += 1
        next_obs = self._augment(obs)
        if self.features is not None:
            final = self._final_features(final, done, next_obs)
        # The base action at a final observation would advance the base's per-env state; the last executed
        # base action (and the plan as it stood then) stands in for it (it only matters for time-out bootstraps).
        for k, value in prev.items():
            final[k] = np.where(done[:, None], value, next_obs[k])
        info = {"final_obs": final, "critic_action": executed.astype(np.float32), "executed": physical,
                "is_success": success,
                "residual_abs": float(np.abs(executed - prev[BASE_KEY]).mean())}
        return next_obs, reward.astype(np.float32), terminated, truncated, info

    def close(self) -> None:
        self.venv.close()


class ResidualPolicy:
    """Base policy + residual actor as one :class:`~robolearn.core.protocols.Policy` (``(B, 1, Da)`` chunks).

    The base chunk is consumed one step per call; the residual is the actor's deterministic action, computed on
    the actor's device (observations in and the correction out as numpy). ``noise`` is passed to the base when
    it replans.

    A control loop that calls :meth:`prepare` after each command has gone out (the ROS policy node's runner)
    gets the base's next chunk computed there, off the command path: the call for the chunk's last action
    leaves that observation to :meth:`prepare`, which replans the base from it; the next call then runs only
    the residual actor. That chunk starts with the action for the step just taken, so its second action is
    the next one used (as a lead of one step; the base replans every ``Ta - 1`` steps). Whether a task
    tolerates the one-step-older plan is the task's: PandaLift's residual did (20/30 against 21/30 without),
    the QuadHover diffusion base did not (3/12 against 9/12 for the base alone planned one step early).
    """

    def __init__(self, base: Policy, actor: Actor, action_space: gym.spaces.Box,
                 scale: float | Sequence[float], plan_steps: int = 0, features: Features | None = None) -> None:
        self.base, self.actor, self.plan_steps, self.features = base, actor, int(plan_steps), features
        self._device = module_device(actor)
        self.scaler = ActionScaler(action_space)
        self.scale = residual_scales(scale, int(np.prod(action_space.shape)))
        self._chunk: np.ndarray | None = None
        self._index = 0
        self._deferred: Obs | None = None
        """The observation of a chunk's last action, not yet given to the base (:meth:`prepare` replans from it)."""
        self._prepared = False
        """A caller has used :meth:`prepare`: the last action of a chunk defers its observation to it."""

    @property
    def noise_shape(self) -> tuple[int, ...] | None:
        return self.base.noise_shape

    @property
    def shapes(self) -> dict[str, tuple[int, ...]] | None:
        """Every observation key the policy reads, with its per-frame shape: the base's and the actor's (not the
        residual's own ``base_action`` / ``base_plan`` / ``base_features``); None when the base does not say (a
        scripted base may read any key)."""
        base = getattr(self.base, "shapes", None)
        if base is None:
            return None
        actor = {k: s for k, s in self.actor.encoder.obs_shapes.items() if k not in BASE_KEYS}
        return {**base, **actor}

    @torch.no_grad()
    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        """``(B, 1, Da)`` physical action: base action plus ``scale *`` the actor's correction."""
        if self._deferred is not None:  # prepare() did not run after the last call: the base still needs it
            if hasattr(self.base, "observe"):
                self.base.observe(self._deferred)
            self._deferred = None
        if self._chunk is None or self._index >= self._chunk.shape[1] or self._chunk.shape[0] != batch_size(obs):
            self._chunk, self._index = np.asarray(self.base.act(obs, noise), np.float32), 0
        elif self._prepared and self._index == self._chunk.shape[1] - 1 and self._chunk.shape[1] > 1:
            self._deferred = obs  # the chunk's last action: prepare() replans the base from this observation
        elif hasattr(self.base, "observe"):  # keep the base's observation history step by step
            self.base.observe(obs)
        base_phys = np.clip(self._chunk[:, self._index], self.scaler.low, self.scaler.high)
        inputs = base_inputs(normalized_chunk(self._chunk, self.scaler), self._index, self.plan_steps)
        self._index += 1
        inputs = {**obs, **inputs}
        if self.features is not None:
            inputs = with_features(inputs, self.features)
        residual = self.actor.mode(torch_obs(inputs, self._device)).cpu().numpy()
        executed = np.clip(base_phys + self.scale * self.scaler.half * residual, self.scaler.low, self.scaler.high)
        return executed[:, None].astype(np.float32)

    @torch.no_grad()
    def prepare(self, obs: Obs) -> None:
        """After :meth:`act` on ``obs`` and its command went out: replan the base now if the next call needs a
        new chunk (``obs`` is what that call was given)."""
        self._prepared = True
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self._chunk, self._index = np.asarray(self.base.act(deferred), np.float32), 1

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        self.base.reset(env_ids)
        self._chunk, self._deferred = None, None
