"""Residual RL (ResFiT) as a refinement method: a bounded correction on top of the frozen base's action
(:mod:`robolearn.refine.residual`). Its params are the one definition of the residual's settings, which HIL
uses too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from robolearn.core.protocols import Policy
from robolearn.refine.methods.base import MethodParams, RefineMethod
from robolearn.refine.noise_steering import ZeroNoisePolicy
from robolearn.refine.residual import (
    ResidualPolicy,
    ResidualVecEnv,
    base_inputs,
    normalized_chunk,
    residual_critic_action,
    residual_scales,
    with_features,
)
from robolearn.rl.networks import Actor

BASE_NOISE = ("random", "zero")
IMAGE_INPUTS = ("frames", "base_features")
"""How a residual over a camera base sees the cameras (``ResidualParams.images``)."""


def sampled_base(base: Policy, base_noise: str) -> Policy:
    """``base`` as the residual sees it: from zero noise when ``base_noise`` is ``zero`` and the base is
    generative (has a ``noise_shape``); a deterministic base as it is."""
    if base_noise == "zero" and getattr(base, "noise_shape", None):
        return ZeroNoisePolicy(base)
    return base


@dataclass
class ResidualParams(MethodParams):
    """Settings of the residual (refinement and HIL)."""

    scale: float | list[float] = 0.1
    """Largest correction, as a fraction of the normalized action range; one for every action dimension, or
    a list with one per dimension (e.g. a gripper the residual may fully override: ``[0.2, 0.2, 0.2, 0.2, 1.0]``
    on the Panda's ``ee_delta`` actions)."""
    plan_steps: int = 0
    """How many of the base chunk's next actions the actor and critic see besides the current one
    (``base_plan``; 0: the current one only, as ResFiT; ``n_action_steps - 1`` covers a whole chunk)."""
    base_noise: str = "random"
    """How a generative (diffusion) base samples its chunks: ``random`` (its noise prior) or ``zero`` (it
    denoises from zero noise: a deterministic base, as ResFiT's, and often a better one; the report's
    ``base (zero noise)`` row). A deterministic base ignores it."""
    images: str = "frames"
    """What actor and critic see of the cameras: ``frames`` (the ``pixels/<camera>`` frames, through CNN encoders
    of their own with DrQ random shift) or ``base_features`` (the camera base's frozen CNN features of the
    current frames, ``base_features``; no encoder to train, a few floats in replay: what a CPU can afford)."""

    def validate(self) -> None:
        if self.base_noise not in BASE_NOISE:
            raise ValueError(f"base_noise must be one of {', '.join(BASE_NOISE)}, got {self.base_noise!r}")
        if self.images not in IMAGE_INPUTS:
            raise ValueError(f"images must be one of {', '.join(IMAGE_INPUTS)}, got {self.images!r}")
        if self.plan_steps < 0:
            raise ValueError(f"plan_steps must be >= 0 (0: the current base action only), got {self.plan_steps}")
        scales = np.asarray(self.scale, np.float32)
        if scales.ndim > 1 or not np.all((scales > 0) & (scales <= 2)):
            raise ValueError(f"scale must be in (0, 2] (one number, or one per action dimension), got {self.scale}")

    def critic_action_fn(self, action_dim: int) -> Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]:
        """The executed normalized action of a residual, without an env (a learner process rebuilds it)."""
        scale = torch.as_tensor(residual_scales(self.scale, action_dim))

        def critic_action(obs: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
            return residual_critic_action(obs, action, scale.to(action.device))

        return critic_action


class ResidualMethod(RefineMethod):
    params_type = ResidualParams
    zero_init_actor = True
    demos_by_default = True

    def wrap(self, venv: gym.vector.VectorEnv, base: Policy | None, params: ResidualParams, seed: int
             ) -> ResidualVecEnv:
        assert base is not None
        return ResidualVecEnv(venv, sampled_base(base, params.base_noise), params.scale, params.plan_steps,
                              base_features(base, params))

    def relabel(self, env: ResidualVecEnv) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """A dataset frame ``{key: (1, ...)}`` plus the base's inputs for it (``base_action``, ``base_plan``; its
        frames as ``base_features`` when the residual reads those)."""

        def frame_inputs(frame: dict[str, Any]) -> dict[str, Any]:
            chunk = normalized_chunk(np.asarray(env.base.act(frame), np.float32), env.scaler)
            labelled = frame | base_inputs(chunk, 0, env.plan_steps)
            features = getattr(env, "features", None)  # a wrapper without it reads the frames
            return with_features(labelled, features) if features is not None else labelled

        return frame_inputs

    def policy(self, base: Policy, actor: Actor, action_space: gym.spaces.Box, params: ResidualParams) -> Policy:
        return ResidualPolicy(sampled_base(base, params.base_noise), actor, action_space, params.scale,
                              params.plan_steps, base_features(base, params))


def base_features(base: Policy, params: ResidualParams) -> Callable[[Any], np.ndarray] | None:
    """The base's frozen camera features when the residual reads them (``images: base_features``), else None; a
    ValueError names the fix when the base has no camera features."""
    if params.images != "base_features":
        return None
    if not callable(getattr(base, "image_features", None)):
        raise ValueError(f"images: base_features needs a camera base policy (a BC or diffusion checkpoint reading "
                         f"pixels/<camera>), got {type(base).__name__}; set params.images=frames")
    return base.image_features
