"""Typed configuration of the base policies (behaviour cloning and diffusion policy).

One :class:`PolicyConfig` describes a policy completely: which observations it reads and their shapes,
its horizons, its encoders and its head. It is saved as ``config.yaml`` in every checkpoint directory,
so a policy loads from that directory alone (:func:`robolearn.policies.checkpoint.load`).

Horizons (all in control steps), as in the diffusion-policy paper::

    observations  |o(t-To+1) ... o(t)|
    predicted             |a(t) a(t+1) ...                a(t+Tp-1)|
    executed              |a(t) ... a(t+Ta-1)|

``To`` = ``n_obs_steps``, ``Tp`` = ``horizon``, ``Ta`` = ``n_action_steps`` (``Ta <= Tp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NormMode = Literal["min_max", "mean_std", "identity"]


@dataclass
class EncoderConfig:
    """Observation encoders: state vectors are normalized and concatenated; images go through a CNN."""

    image_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Output channels of the CNN's stride-2 conv stages (one camera, RGB in)."""
    image_feature_dim: int = 64
    """Size of each camera's per-frame feature after spatial-softmax keypoints and a linear layer."""
    random_shift_pad: int = 4
    """Random-shift augmentation during training: pad by this many pixels, crop back (0 disables)."""
    share_image_encoder: bool = False
    """One CNN for all cameras (True) or one per camera (False)."""


@dataclass
class BCConfig:
    """Behaviour-cloning head: an MLP from the encoded observation history to a ``(Tp, Da)`` chunk."""

    hidden_dims: list[int] = field(default_factory=lambda: [512, 512, 512])
    """Widths of the hidden layers."""
    gaussian: bool = False
    """Predict a diagonal Gaussian (trained by negative log-likelihood) instead of a point (MSE).
    ``act`` returns the mean either way."""
    dropout: float = 0.0
    """Dropout after each hidden layer during training."""
    min_log_std: float = -5.0
    """Lower clamp of the Gaussian head's log standard deviation (normalized action units)."""
    max_log_std: float = 2.0
    """Upper clamp of the Gaussian head's log standard deviation."""


@dataclass
class DiffusionConfig:
    """Action-chunk diffusion: denoiser network, noise schedule and sampler."""

    denoiser: Literal["unet", "mlp"] = "unet"
    """Conditional 1-D temporal U-Net (``unet``) or a small residual MLP (``mlp``)."""
    unet_channels: list[int] = field(default_factory=lambda: [64, 128, 256])
    """U-Net channels per level; the horizon must be divisible by ``2 ** (len - 1)``."""
    kernel_size: int = 5
    """Temporal convolution kernel size of the U-Net (odd)."""
    n_groups: int = 8
    """GroupNorm groups of the U-Net (must divide every channel count)."""
    step_embed_dim: int = 128
    """Size of the sinusoidal diffusion-step embedding."""
    mlp_hidden_dim: int = 512
    """Width of the MLP denoiser."""
    mlp_blocks: int = 3
    """Residual blocks of the MLP denoiser."""
    num_train_timesteps: int = 100
    """Diffusion steps of the training (DDPM) noise schedule."""
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    """Noise schedule (diffusers' names)."""
    prediction_type: Literal["epsilon", "sample"] = "epsilon"
    """What the denoiser predicts: the added noise or the clean action chunk."""
    clip_sample: bool = True
    """Clip the predicted clean chunk to [-1, 1] while sampling (matches ``min_max`` action scaling)."""
    scheduler: Literal["ddpm", "ddim", "dpmsolver"] = "ddim"
    """Sampler used by ``act``; can be changed at load time. ``ddim`` runs with eta=0 (deterministic)."""
    num_inference_steps: int = 10
    """Denoising steps per chunk; can be changed at load time."""
    noise_clip: float | None = 3.0
    """Initial noise (drawn or given) is clipped to [-noise_clip, noise_clip]; None disables."""
    trace_denoiser: bool = True
    """At inference (eval mode), run the denoiser as a TorchScript trace sharing its weights: the same
    numbers without Python per layer, which dominates the U-Net's latency at small batches on a CPU."""


@dataclass
class PolicyConfig:
    """A base policy: observations, horizons, normalization, encoders and head."""

    type: Literal["bc", "diffusion"] = "diffusion"
    """Which policy: ``bc`` (MLP behaviour cloning) or ``diffusion`` (diffusion policy)."""
    obs_keys: list[str] = field(default_factory=list)
    """Observation keys the policy reads (``joint_pos``, ``pixels/front``...). Empty: all keys of
    ``obs_shapes``."""
    obs_shapes: dict[str, list[int]] = field(default_factory=dict)
    """Per-frame shape of each observation key; images ``pixels/<camera>`` are ``[H, W, 3]`` uint8.
    Empty in a preset: filled from the dataset when training starts."""
    action_dim: int = 0
    """Action dimension ``Da`` (0 in a preset: filled from the dataset)."""
    n_obs_steps: int = 2
    """Observation history ``To``."""
    horizon: int = 16
    """Predicted chunk length ``Tp``."""
    n_action_steps: int = 8
    """Executed chunk length ``Ta`` returned by ``act`` (``<= horizon``)."""
    state_norm: NormMode = "min_max"
    """Normalization of state observations."""
    action_norm: NormMode = "min_max"
    """Normalization of actions (``min_max`` maps the data range to [-1, 1])."""
    mask_padded_actions: bool = True
    """Leave actions past the episode end (``action_is_pad``) out of the loss."""
    seed: int = 0
    """Seed of the weight initialization and of the policy's own noise generator."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Observation encoders."""
    bc: BCConfig = field(default_factory=BCConfig)
    """Head of the ``bc`` policy."""
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    """Denoiser and sampler of the ``diffusion`` policy."""

    def keys(self) -> list[str]:
        """The observation keys read, in a fixed order."""
        return list(self.obs_keys) if self.obs_keys else sorted(self.obs_shapes)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        if self.action_dim <= 0:
            raise ValueError(f"policy.action_dim must be > 0, got {self.action_dim}")
        if not self.keys():
            raise ValueError("policy.obs_shapes is empty: the policy reads no observation")
        for key in self.keys():
            if key not in self.obs_shapes:
                raise ValueError(f"policy.obs_keys names '{key}', which has no entry in policy.obs_shapes "
                                 f"(known: {sorted(self.obs_shapes)})")
            shape = self.obs_shapes[key]
            if is_image_key(key) and (len(shape) != 3 or shape[-1] != 3):
                raise ValueError(f"image observation '{key}' must have shape [H, W, 3], got {shape}")
        if self.n_obs_steps < 1 or self.horizon < 1:
            raise ValueError(f"n_obs_steps and horizon must be >= 1, got {self.n_obs_steps}, {self.horizon}")
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"n_action_steps must be in [1, horizon={self.horizon}], "
                             f"got {self.n_action_steps}")


def is_image_key(key: str) -> bool:
    """Camera observations are named ``pixels/<camera>``."""
    return key.startswith("pixels/")
