"""Optimizer plumbing of the learner: fused Adam, one-call gradient clipping and target updates.

Each helper replaces a per-parameter Python loop (one small kernel per tensor) with a multi-tensor kernel
over the whole list, which is where a small-network update spends its non-matmul time on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

FUSED_DEVICES = ("cpu", "cuda")
"""Device types whose Adam has a fused (single-kernel) implementation that this learner uses."""


def adam(params: Iterable[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam over ``params``, fused (one kernel for every tensor) where the device has the kernel."""
    params = list(params)
    fused = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


def load_adam_state(opt: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """Load a saved optimizer state into ``opt`` keeping ``opt``'s implementation flags.

    ``Optimizer.load_state_dict`` takes ``fused`` / ``foreach`` from the saved groups, so a state saved by
    the per-tensor Adam would otherwise turn the fused one back into the slow loop.
    """
    flags = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, kept in zip(opt.param_groups, flags, strict=True):
        group.update(kept)


def clip_grad_norm_(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``params`` so that their joint 2-norm is at most ``max_norm``; returns the
    norm before clipping (a 0-dim tensor, not read on the host)."""
    return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


@torch.no_grad()
def polyak_(target: Sequence[torch.Tensor], source: Sequence[torch.Tensor], tau: float) -> None:
    """``target <- target + tau * (source - target)`` for every pair, in one multi-tensor call."""
    torch._foreach_lerp_(list(target), list(source), tau)
