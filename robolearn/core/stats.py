"""Small statistics used when reporting results."""

from __future__ import annotations

import math


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
