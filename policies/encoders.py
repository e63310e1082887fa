"""Observation encoders: normalized state vectors and a small CNN for camera images.

:class:`ObservationEncoder` maps an observation history (a dict of ``(B, To, *shape)`` tensors, state
already normalized, images ``uint8`` ``(B, To, H, W, 3)``) to one conditioning vector ``(B, To * F)``
where ``F`` is the per-frame feature size (state dims + ``image_feature_dim`` per camera).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robolearn.policies.configuration import EncoderConfig, is_image_key


class RandomShift(nn.Module):
    """Random-shift augmentation (DrQ): replicate-pad by ``pad`` pixels and crop back at a random offset.

    Input and output ``(N, C, H, W)`` float; each image gets its own integer shift in ``[-pad, pad]``.
    """

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = int(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad <= 0:
            return x
        n, _, h, w = x.shape
        padded = F.pad(x, (self.pad,) * 4, mode="replicate")
        dy = torch.randint(0, 2 * self.pad + 1, (n, 1), device=x.device)
        dx = torch.randint(0, 2 * self.pad + 1, (n, 1), device=x.device)
        rows = (torch.arange(h, device=x.device)[None] + dy)[:, :, None]  # (N, H, 1)
        cols = (torch.arange(w, device=x.device)[None] + dx)[:, None, :]  # (N, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


class SpatialSoftmax(nn.Module):
    """Expected image coordinates of each channel's softmax: ``(N, C, H, W)`` -> ``(N, 2C)`` in [-1, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        attn = torch.softmax(x.reshape(n, c, h * w), dim=-1).reshape(n, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        ey = (attn.sum(dim=3) * ys).sum(dim=2)
        ex = (attn.sum(dim=2) * xs).sum(dim=2)
        return torch.cat([ex, ey], dim=1)


class ImageEncoder(nn.Module):
    """A small CNN (a few stride-2 conv stages, GroupNorm, spatial-softmax keypoints, linear layer).

    ``forward``: uint8 or float ``(N, H, W, 3)`` in [0, 255] -> ``(N, feature_dim)``.
    """

    def __init__(self, channels: Sequence[int], feature_dim: int, shift_pad: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in channels:
            groups = math.gcd(8, c_out)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(groups, c_out), nn.ReLU()]
            layers += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(groups, c_out), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax()
        self.proj = nn.Linear(2 * c_in, feature_dim)
        self.shift = RandomShift(shift_pad)
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor, augment: bool = False) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if augment:
            x = self.shift(x)
        return self.proj(self.keypoints(self.convs(x)))


class ObservationEncoder(nn.Module):
    """Encodes an observation history into the conditioning vector of a policy head.

    ``forward(obs)``: ``{key: (B, To, *shape)}`` (state normalized, images uint8) -> ``(B, To * F)``.
    """

    def __init__(self, cfg: EncoderConfig, obs_shapes: Mapping[str, Sequence[int]], n_obs_steps: int) -> None:
        super().__init__()
        self.state_keys = [k for k in obs_shapes if not is_image_key(k)]
        self.image_keys = [k for k in obs_shapes if is_image_key(k)]
        self.state_dims = {k: math.prod(obs_shapes[k]) for k in self.state_keys}
        self.n_obs_steps = n_obs_steps
        self.cameras = nn.ModuleDict()
        n_cnn = 1 if (cfg.share_image_encoder and self.image_keys) else len(self.image_keys)
        for i in range(n_cnn):
            cnn = ImageEncoder(cfg.image_channels, cfg.image_feature_dim, cfg.random_shift_pad)
            self.cameras[str(i)] = cnn
        self.frame_dim = sum(self.state_dims.values()) + cfg.image_feature_dim * len(self.image_keys)
        self.out_dim = self.frame_dim * n_obs_steps

    def _cnn(self, index: int) -> ImageEncoder:
        """The CNN of the ``index``-th image key (the shared one with ``share_image_encoder``)."""
        return self.cameras[str(min(index, len(self.cameras) - 1))]

    def image_features(self, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One frame per camera ``{image key: (N, H, W, 3)}`` uint8 -> ``(N, len(image_keys) * F)``: each camera's
        CNN features, in ``image_keys`` order, without augmentation."""
        return torch.cat([self._cnn(i)(images[k]) for i, k in enumerate(self.image_keys)], dim=-1)

    def forward(self, obs: Mapping[str, torch.Tensor], augment: bool = False) -> torch.Tensor:
        parts = []
        for key in self.state_keys:
            x = obs[key]
            parts.append(x.reshape(x.shape[0], x.shape[1], -1).float())
        for i, key in enumerate(self.image_keys):
            x = obs[key]
            b, t = x.shape[:2]
            parts.append(self._cnn(i)(x.reshape(b * t, *x.shape[2:]), augment).reshape(b, t, -1))
        feats = torch.cat(parts, dim=-1)
        return feats.reshape(feats.shape[0], -1)
