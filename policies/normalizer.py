"""Per-feature affine normalization kept inside the policy and saved with its weights.

Each feature ``key`` maps physical values ``x`` to ``x * scale + offset``; ``scale`` and ``offset``
are buffers of the module (so they live in the state dict and the checkpoint) computed from dataset
statistics ``{"min", "max", "mean", "std"}``:

* ``min_max``: the data range maps to [-1, 1] (a constant dimension maps to 0);
* ``mean_std``: zero mean, unit standard deviation (a constant dimension is only centred);
* ``identity``: unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

EPS = 1e-6

StatsDict = Mapping[str, Mapping[str, np.ndarray | torch.Tensor | list[float]]]
"""``{feature: {"min": (*shape,), "max": ..., "mean": ..., "std": ...}}`` in physical units."""


def _buffer_name(key: str) -> str:
    return key.replace("/", "__").replace(".", "_")


class Normalizer(nn.Module):
    """Affine normalization of named features; ``shapes`` gives each feature's per-frame shape."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], modes: Mapping[str, str]) -> None:
        super().__init__()
        self.shapes = {k: tuple(int(d) for d in s) for k, s in shapes.items()}
        self.modes = dict(modes)
        for key, shape in self.shapes.items():
            if self.modes.get(key) not in ("min_max", "mean_std", "identity"):
                raise ValueError(f"normalizer: feature '{key}' has unknown mode {self.modes.get(key)!r}")
            self.register_buffer(f"{_buffer_name(key)}__scale", torch.ones(shape))
            self.register_buffer(f"{_buffer_name(key)}__offset", torch.zeros(shape))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _pair(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if key not in self.shapes:
            raise KeyError(f"normalizer has no feature '{key}'; known: {sorted(self.shapes)}")
        name = _buffer_name(key)
        return getattr(self, f"{name}__scale"), getattr(self, f"{name}__offset")

    def affine(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, offset)`` of feature ``key``, each ``(*shape,)``: normalized = physical * scale + offset."""
        return self._pair(key)

    def set_stats(self, stats: StatsDict) -> None:
        """Compute ``scale``/``offset`` of every feature from dataset statistics (physical units)."""
        for key, shape in self.shapes.items():
            mode = self.modes[key]
            if mode == "identity":
                continue
            if key not in stats:
                raise KeyError(f"normalizer: no statistics for feature '{key}'; got {sorted(stats)}")
            needed = ("min", "max") if mode == "min_max" else ("mean", "std")
            vals = {}
            for name in needed:
                if name not in stats[key]:
                    raise KeyError(f"normalizer: statistics of '{key}' lack '{name}' (mode {mode})")
                v = torch.as_tensor(np.asarray(stats[key][name], dtype=np.float32))
                if tuple(v.shape) != shape:
                    got = tuple(v.shape)
                    raise ValueError(f"normalizer: '{key}.{name}' has shape {got}, expected {shape}")
                if not torch.isfinite(v).all():
                    raise ValueError(f"normalizer: '{key}.{name}' contains NaN or inf")
                vals[name] = v
            if mode == "min_max":
                span = vals["max"] - vals["min"]
                flat = span < EPS
                scale = torch.where(flat, torch.ones_like(span), 2.0 / span.clamp_min(EPS))
                centre = (vals["max"] + vals["min"]) / 2
                offset = -centre * scale
            else:
                std = vals["std"]
                scale = torch.where(std < EPS, torch.ones_like(std), 1.0 / std.clamp_min(EPS))
                offset = -vals["mean"] * scale
            s, o = self._pair(key)
            s.copy_(scale)
            o.copy_(offset)
        self.fitted.fill_(True)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Physical ``(..., *shape)`` -> normalized ``(..., *shape)``."""
        scale, offset = self._pair(key)
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor) -> torch.Tensor:
        """Normalized ``(..., *shape)`` -> physical ``(..., *shape)``."""
        scale, offset = self._pair(key)
        return (y - offset) / scale
