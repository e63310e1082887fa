"""Behaviour cloning: an MLP from the encoded observation history to an action chunk.

The head predicts the normalized chunk ``(Tp, Da)``, either as a point (trained with MSE) or as a
diagonal Gaussian (trained by negative log-likelihood). ``act`` returns the mean and ignores ``noise``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from robolearn.policies.base import ChunkPolicy
from robolearn.policies.configuration import PolicyConfig


def mlp(in_dim: int, hidden: list[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear-Mish(-Dropout) layers of widths ``hidden`` then a linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.Mish()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class BCPolicy(ChunkPolicy):
    """MLP behaviour cloning over action chunks (see module docstring)."""

    def __init__(self, cfg: PolicyConfig) -> None:
        if cfg.type != "bc":
            raise ValueError(f"BCPolicy needs policy.type 'bc', got '{cfg.type}'")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            super().__init__(cfg)
            out = cfg.horizon * cfg.action_dim * (2 if cfg.bc.gaussian else 1)
            self.head = mlp(self.encoder.out_dim, list(cfg.bc.hidden_dims), out, cfg.bc.dropout)

    def _heads(
        self, obs: Mapping[str, torch.Tensor], augment: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.cfg
        out = self.head(self.encoder(obs, augment))
        out = out.reshape(out.shape[0], cfg.horizon, -1)
        if not cfg.bc.gaussian:
            return out, None
        mean, log_std = out.chunk(2, dim=-1)
        return mean, log_std.clamp(cfg.bc.min_log_std, cfg.bc.max_log_std)

    def predict_normalized(self, obs: Mapping[str, torch.Tensor], noise: torch.Tensor | None) -> torch.Tensor:
        """Mean chunk ``(B, Tp, Da)`` in normalized units; ``noise`` is ignored."""
        return self._heads(obs, augment=False)[0]

    def loss_normalized(
        self, obs: Mapping[str, torch.Tensor], action: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        mean, log_std = self._heads(obs, augment=self.training)
        weight = mask.float().unsqueeze(-1)
        denom = weight.sum().clamp_min(1.0) * action.shape[-1]
        mse = ((mean - action) ** 2 * weight).sum() / denom
        if log_std is None:
            return mse, {"loss": mse.item(), "mse": mse.item()}
        nll_el = 0.5 * ((action - mean) / log_std.exp()) ** 2 + log_std + 0.5 * math.log(2 * math.pi)
        nll = (nll_el * weight).sum() / denom
        return nll, {"loss": nll.item(), "mse": mse.item(), "log_std": log_std.mean().item()}
