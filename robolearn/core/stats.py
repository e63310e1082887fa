"""Small statistics used when reporting results."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (better than normal approx. near 0 and 1).

    Returns ``(low, high)`` in [0, 1]; ``(0, 1)`` when ``n == 0``.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(successes: int, n: int) -> str:
    """``"87.0% [78.9, 92.3] (87/100)"``."""
    lo, hi = wilson_interval(successes, n)
    rate = successes / n if n else 0.0
    return f"{100 * rate:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({successes}/{n})"


def mean_interval(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` with its 95% percentile-bootstrap interval: ``(mean, low, high)``.

    For quantities with no closed-form interval here (a lap time, a time to success): ``resamples``
    resamples with replacement from a fixed ``seed``, so the same values always give the same interval.
    One value gives ``(v, v, v)``; no value raises ``ValueError``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_interval needs at least one value")
    means = x[np.random.default_rng(seed).integers(0, x.size, (resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(x.mean()), float(lo), float(hi)
