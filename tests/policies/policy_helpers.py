"""Small policy configs and a synthetic demonstration task shared by the policy tests.

Imported by the tests as ``policy_helpers`` (this folder is on sys.path under pytest).

The synthetic task: state ``x (4,)`` and ``v (2,)``; the expert's chunk repeats the action
``a = tanh(W [x, v]) * scale`` over the horizon, so a policy can learn it in a few hundred steps.
"""

from __future__ import annotations

import numpy as np
import torch

from robolearn.policies.configuration import BCConfig, DiffusionConfig, EncoderConfig, PolicyConfig

TO, TP, TA, DA = 2, 8, 4, 3
SHAPES = {"x": [4], "v": [2]}
IMAGE = "pixels/front"
W = np.random.default_rng(0).normal(size=(DA, 6)).astype(np.float32)
SCALE = np.array([0.02, 0.02, 1.0], np.float32)
"""Action scale in physical units (e.g. metres for the first two, a gripper in [-1, 1])."""


def small_config(kind: str = "diffusion", denoiser: str = "unet", image: bool = False, **kw) -> PolicyConfig:
    shapes = dict(SHAPES) | ({IMAGE: [24, 24, 3]} if image else {})
    return PolicyConfig(
        type=kind, obs_shapes=shapes, action_dim=DA, n_obs_steps=TO, horizon=TP, n_action_steps=TA, seed=0,
        encoder=EncoderConfig(image_channels=[8, 16], image_feature_dim=8, random_shift_pad=2),
        bc=BCConfig(hidden_dims=[64, 64]),
        diffusion=DiffusionConfig(
            denoiser=denoiser, unet_channels=[16, 32], n_groups=4, step_embed_dim=16, mlp_hidden_dim=64,
            mlp_blocks=2, num_train_timesteps=50, num_inference_steps=5,
        ),
        **kw,
    )


def expert(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(B, 4), (B, 2) -> (B, Da)`` physical action."""
    return np.tanh(np.concatenate([x, v], -1) @ W.T) * SCALE


def stats() -> dict[str, dict[str, np.ndarray]]:
    return {
        "x": {"min": -np.ones(4) * 2, "max": np.ones(4) * 2, "mean": np.zeros(4), "std": np.ones(4)},
        "v": {"min": -np.ones(2), "max": np.ones(2), "mean": np.zeros(2), "std": np.ones(2) * 0.5},
        "action": {"min": -SCALE, "max": SCALE, "mean": np.zeros(DA), "std": SCALE / 2},
    }


def make_batch(rng: np.random.Generator, b: int = 32, image: bool = False) -> dict:
    x = rng.uniform(-2, 2, (b, TO, 4)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, TO, 2)).astype(np.float32)
    a = expert(x[:, -1], v[:, -1])[:, None].repeat(TP, 1)
    pad = np.zeros((b, TP), bool)
    pad[: b // 4, -2:] = True
    obs = {"x": torch.from_numpy(x), "v": torch.from_numpy(v)}
    if image:
        obs[IMAGE] = torch.from_numpy(rng.integers(0, 256, (b, TO, 24, 24, 3), dtype=np.uint8))
    return {"obs": obs, "action": torch.from_numpy(a), "action_is_pad": torch.from_numpy(pad)}


def make_obs(rng: np.random.Generator, b: int = 2, image: bool = False) -> dict[str, np.ndarray]:
    obs = {
        "x": rng.uniform(-2, 2, (b, 4)).astype(np.float32),
        "v": rng.uniform(-1, 1, (b, 2)).astype(np.float32),
    }
    if image:
        obs[IMAGE] = rng.integers(0, 256, (b, 24, 24, 3), dtype=np.uint8)
    return obs
