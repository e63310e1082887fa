"""Critic losses: squared TD error and HL-Gauss (histogram loss with Gaussian targets, Farebrother et al. 2024).

HL-Gauss represents ``Q`` as a categorical distribution over ``num_bins`` evenly spaced values in
``[v_min, v_max]``; a scalar target ``y`` becomes the probability mass that ``N(y, sigma^2)`` puts in each
bin, and the critic minimises the cross-entropy to it. ``Q = sum_k p_k * center_k``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class HLGaussConfig:
    """Classification critic (HL-Gauss); off by default."""

    enabled: bool = False
    """Use the HL-Gauss cross-entropy loss instead of squared TD error."""
    num_bins: int = 51
    """Number of value bins."""
    v_min: float = -0.5
    """Lowest representable Q (same units as the return)."""
    v_max: float = 1.5
    """Highest representable Q."""
    sigma_ratio: float = 0.75
    """Gaussian width as a multiple of the bin width."""


class HLGauss(torch.nn.Module):
    """Converts between scalar values ``(...)`` and bin logits/probabilities ``(..., num_bins)``."""

    def __init__(self, cfg: HLGaussConfig) -> None:
        super().__init__()
        if cfg.num_bins < 2 or cfg.v_max <= cfg.v_min:
            raise ValueError(f"HL-Gauss needs num_bins >= 2 and v_max > v_min, got {cfg}")
        edges = torch.linspace(cfg.v_min, cfg.v_max, cfg.num_bins + 1)
        self.register_buffer("edges", edges)
        self.register_buffer("centers", (edges[:-1] + edges[1:]) / 2)
        self.sigma = cfg.sigma_ratio * float(edges[1] - edges[0])

    def value(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected value ``(...)`` of bin logits ``(..., num_bins)``."""
        return (logits.softmax(-1) * self.centers).sum(-1)

    def target_probs(self, target: torch.Tensor) -> torch.Tensor:
        """Bin probabilities ``(..., num_bins)`` of ``N(target, sigma^2)`` truncated to the support."""
        target = target.clamp(float(self.edges[0]), float(self.edges[-1]))
        cdf = torch.special.erf((self.edges - target.unsqueeze(-1)) / (self.sigma * 2**0.5))
        mass = cdf[..., 1:] - cdf[..., :-1]
        return mass / (cdf[..., -1:] - cdf[..., :1]).clamp_min(1e-8)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy between ``logits (E, B, K)`` and scalar targets ``(B,)``."""
        probs = self.target_probs(target).expand_as(logits)
        return -(probs * F.log_softmax(logits, -1)).sum(-1).mean()
