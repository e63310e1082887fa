"""DrQ random-shift augmentation for pixel observations (Kostrikov et al. 2020)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.nn import functional as F


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad ``(B, H, W, C)`` images by ``pad`` (edge replication) and crop back at a random offset per image.

    Returns a tensor of the input dtype and shape. ``pad = 0`` returns the input.
    """
    if pad <= 0:
        return images
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (B, H)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.to(images.dtype)


def augment_obs(obs: Mapping[str, torch.Tensor], pad: int, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
    """Random-shift every pixel key (``pixels*`` with 4-D values) of a batched observation."""
    return {k: random_shift(v, pad, generator) if k.startswith("pixels") and v.dim() == 4 else v
            for k, v in obs.items()}
