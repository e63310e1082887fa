"""Networks of the off-policy learner: encoders, actors and a vectorised critic ensemble.

Observations are dicts. State keys (float arrays of any shape) are flattened and concatenated in sorted
key order; pixel keys (``uint8`` arrays ``(H, W, 3)``, names starting with ``pixels``) go through a small
convolutional encoder. Every hidden layer is ``Linear -> LayerNorm -> ReLU`` (LayerNorm in actor and
critic, as RLPD recommends for high update-to-data ratios). Actions are in the learner's normalized
space ``[-1, 1]^Da``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
OBS_CLIP = 10.0
"""Standardised state features are clipped to ``[-OBS_CLIP, OBS_CLIP]``."""


def is_pixel_key(key: str, shape: Sequence[int]) -> bool:
    """Pixel observations: keys named ``pixels...`` holding ``(H, W, 3)`` images."""
    return key.startswith("pixels") and len(shape) == 3


def run_hidden_then_output(layers: nn.Sequential, x: torch.Tensor, matmul_dtype: torch.dtype | None,
                           heads: torch.Tensor | None = None) -> torch.Tensor:
    """``layers`` applied to ``x``: the hidden layers' matrix products in ``matmul_dtype`` (None: float32),
    the output layer in float32.

    Reduced precision runs under :func:`torch.autocast`: the weights stay float32 (the optimizer's and the
    checkpoint's), matrix products take bfloat16 inputs and accumulate in float32, LayerNorm runs in float32.
    The last layer's product stays float32, so Q-values and actions keep float32 resolution (a bfloat16
    Q near 20 would be quantised in steps of 0.06, larger than many TD errors). ``heads`` goes to
    :class:`EnsembleLinear` layers.
    """
    with torch.autocast(x.device.type, dtype=matmul_dtype or torch.bfloat16, enabled=matmul_dtype is not None):
        for layer in layers[:-1]:
            x = layer(x, heads) if isinstance(layer, EnsembleLinear) else layer(x)
    last = layers[-1]
    x = x.float()
    return last(x, heads) if isinstance(last, EnsembleLinear) else last(x)


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """``Linear -> LayerNorm -> ReLU`` per hidden width, then a plain ``Linear`` to ``out_dim``.

    The ReLU works in place on the LayerNorm's output (its backward does not read that output), which saves
    an allocation and a pass over ``(B, width)`` per layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.LayerNorm(width), nn.ReLU(inplace=True)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class PixelEncoder(nn.Module):
    """Four 3x3 convolutions (stride 2 then 1) and a LayerNorm projection: ``(B, H, W, 3)`` uint8 -> ``(B, F)``."""

    def __init__(self, height: int, width: int, features: int = 64) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.Flatten(),
        )
        with torch.no_grad():
            n = self.conv(torch.zeros(1, 3, height, width)).shape[1]
        self.proj = nn.Sequential(nn.Linear(n, features), nn.LayerNorm(features), nn.Tanh())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.proj(self.conv(x))


class ObsEncoder(nn.Module):
    """Dict observation -> flat feature vector ``(B, out_dim)``.

    State features are standardised, ``clip((x - shift) / scale, -OBS_CLIP, OBS_CLIP)``, with ``shift`` and
    ``scale`` buffers (identity until :meth:`set_normalization`; saved with the weights, so a refined policy
    loads them). Task states are in metres with centimetre-scale variation; unscaled, the features that
    decide success (cube-to-gripper offset, cube height) barely move the first layer.
    """

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], pixel_features: int = 64) -> None:
        super().__init__()
        if not obs_shapes:
            raise ValueError("ObsEncoder needs at least one observation key")
        self.obs_shapes = {k: tuple(int(d) for d in s) for k, s in obs_shapes.items()}
        """Every input key and its shape ``(H, W, 3)`` for pixels, ``(D,)`` for state."""
        self.state_keys = sorted(k for k, s in obs_shapes.items() if not is_pixel_key(k, s))
        self.pixel_keys = sorted(k for k, s in obs_shapes.items() if is_pixel_key(k, s))
        self.pixels = nn.ModuleDict(
            {k.replace("/", "_"): PixelEncoder(obs_shapes[k][0], obs_shapes[k][1], pixel_features)
             for k in self.pixel_keys}
        )
        self.state_dim = sum(math.prod(obs_shapes[k]) for k in self.state_keys)
        self.out_dim = self.state_dim + pixel_features * len(self.pixel_keys)
        self.register_buffer("shift", torch.zeros(self.state_dim))
        self.register_buffer("scale", torch.ones(self.state_dim))

    def state_features(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Raw (unnormalised) state features ``(B, state_dim)`` in sorted key order."""
        if not self.state_keys:
            first = next(iter(obs.values()))
            return torch.zeros(len(first), 0, device=first.device)
        return torch.cat([obs[k].reshape(obs[k].shape[0], -1).float() for k in self.state_keys], dim=-1)

    @torch.no_grad()
    def set_normalization(self, shift: torch.Tensor, scale: torch.Tensor) -> None:
        """Standardise state features with ``shift`` and ``scale`` ``(state_dim,)`` from now on."""
        self.shift.copy_(shift)
        self.scale.copy_(scale)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.state_keys:
            x = (self.state_features(obs) - self.shift) / self.scale
            parts.append(x.clamp(-OBS_CLIP, OBS_CLIP))
        parts += [self.pixels[k.replace("/", "_")](obs[k]) for k in self.pixel_keys]
        return torch.cat(parts, dim=-1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Actors saved before normalization existed have no shift/scale: keep the identity.
        for name in ("shift", "scale"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Actor(nn.Module):
    """Squashed policy over ``[-1, 1]^Da``: Gaussian + tanh (SAC) or deterministic tanh (TD3).

    ``zero_init_last`` zeroes the mean head so that the deterministic action starts at exactly 0 (a
    residual actor then starts at the base policy).
    """

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int, hidden: Sequence[int],
                 stochastic: bool, zero_init_last: bool = False) -> None:
        super().__init__()
        self.encoder = ObsEncoder(obs_shapes)
        self.stochastic = stochastic
        self.action_dim = action_dim
        self.net = mlp(self.encoder.out_dim, hidden, action_dim * (2 if stochastic else 1))
        if zero_init_last:
            last = self.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    matmul_dtype: torch.dtype | None = None
    """Hidden layers' matrix-product precision (None: float32; :func:`run_hidden_then_output`)."""

    def forward(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean ``(B, Da)`` and log-std ``(B, Da)`` (zeros for a deterministic actor)."""
        out = run_hidden_then_output(self.net, self.encoder(obs), self.matmul_dtype)
        if not self.stochastic:
            return out, torch.zeros_like(out)
        mean, log_std = out.chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def mode(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic action ``tanh(mean)`` ``(B, Da)`` in ``[-1, 1]``."""
        return torch.tanh(self(obs)[0])

    def sample(self, obs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample ``(B, Da)`` and its log-probability ``(B,)`` (SAC actors only)."""
        if not self.stochastic:
            raise RuntimeError("sample() needs a stochastic (SAC) actor")
        mean, log_std = self(obs)
        std = log_std.exp()
        # drawn where the generator lives (the learner's is a CPU generator, so a seed gives the same draws on
        # every device and its state loads anywhere), then moved to the actor's device
        where = generator.device if generator is not None else mean.device
        eps = torch.randn(mean.shape, generator=generator, device=where, dtype=mean.dtype).to(mean.device)
        pre = mean + std * eps
        action = torch.tanh(pre)
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre - F.softplus(-2 * pre))).sum(-1)
        return action, log_prob


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers applied in one batched matmul: ``(E, B, I) -> (E, B, O)``.

    ``weight`` is ``(E, I, O)`` and ``bias`` ``(E, 1, O)``; ``heads`` (``(K,)`` long) applies only those
    layers: ``(K, B, I) -> (K, B, O)``.
    """

    def __init__(self, ensemble: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(ensemble, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(ensemble, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        if heads is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[heads], x, self.weight[heads])


class CriticEnsemble(nn.Module):
    """``E`` Q-heads ``Q_e(s, a)``; each has its own encoder-free MLP over ``[features(s), a]``.

    The heads' weights are stacked (:class:`EnsembleLinear`), so a layer of all heads is one batched matmul;
    the LayerNorm affine parameters ``(width,)`` are shared by the heads (the layout checkpoints hold:
    ``net.<i>.weight`` / ``net.<i>.bias``). ``forward`` returns ``(E, B, out)``: ``out = 1`` for
    regression, ``num_bins`` logits for HL-Gauss. The observation encoder is shared by the heads (for pixels
    it is the DrQ critic encoder).
    """

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int, hidden: Sequence[int],
                 num_heads: int, out_dim: int = 1) -> None:
        super().__init__()
        if not 1 <= num_heads <= 10:
            raise ValueError(f"num_critics must be in 1..10, got {num_heads}")
        self.encoder = ObsEncoder(obs_shapes)
        self.num_heads = num_heads
        layers: list[nn.Module] = []
        in_dim = self.encoder.out_dim + action_dim
        for width in hidden:
            layers += [EnsembleLinear(num_heads, in_dim, width), nn.LayerNorm(width), nn.ReLU(inplace=True)]
            in_dim = width
        layers.append(EnsembleLinear(num_heads, in_dim, out_dim))
        self.net = nn.Sequential(*layers)

    matmul_dtype: torch.dtype | None = None
    """Hidden layers' matrix-product precision (None: float32; :func:`run_hidden_then_output`)."""

    def forward(self, obs: Mapping[str, torch.Tensor], action: torch.Tensor, heads: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Outputs ``(E, B, out)`` for observations ``{key: (B, ...)}`` and actions ``(B, Da)``; with ``heads``
        (``(K,)`` long, distinct) only those heads, ``(K, B, out)`` in the order of ``heads``."""
        x = torch.cat([self.encoder(obs), action], dim=-1)
        x = x.unsqueeze(0).expand(self.num_heads if heads is None else len(heads), -1, -1)
        return run_hidden_then_output(self.net, x, self.matmul_dtype, heads)
