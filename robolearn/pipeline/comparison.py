"""Refined policies against the strongest variant of their base, per dynamics preset.

A refined policy is only worth its compute if it beats what the base gives for free: for a diffusion base
that is the better of random-noise and zero-noise sampling (``base`` and ``base (zero noise)``); for a
classical base, the controller itself. Each row pairs one refined evaluation with the best base variant on
the same dynamics and says whether the two 95% Wilson intervals are apart.

Records are the evaluation records of :mod:`robolearn.pipeline.records`. A record is a *base variant* when
its policy is ``base`` or ``base (<variant>)``; expert and demonstrator records are references, not
candidates; everything else is a refined policy (ROS 2 runs included: they are compared on the dynamics
they ran on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

BASE = "base"
REFERENCES = ("expert", "demonstrator")


def is_base_variant(policy: str) -> bool:
    """``base`` or ``base (<variant>)``."""
    return policy == BASE or policy.startswith(BASE + " (")


def is_refined(policy: str) -> bool:
    """Neither a base variant nor a reference (expert, demonstrator)."""
    return not is_base_variant(policy) and not policy.startswith(REFERENCES)


def best_base(evals: Iterable[dict[str, Any]], dynamics: str) -> dict[str, Any] | None:
    """The base variant with the highest success rate on ``dynamics`` (ties: the higher interval
    lower bound, then the name); None when no base variant was evaluated there."""
    candidates = [r for r in evals if is_base_variant(r["policy"]) and r["dynamics"] == dynamics]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r["success_rate"], r["ci95"][0], r["policy"]))


@dataclass(frozen=True)
class Comparison:
    """One refined evaluation against the best base variant on the same dynamics."""

    policy: str
    dynamics: str
    rate: float
    ci95: tuple[float, float]
    base: str
    base_rate: float
    base_ci95: tuple[float, float]

    @property
    def gain(self) -> float:
        """Refined minus best-base success rate, in [-1, 1]."""
        return self.rate - self.base_rate

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` when the intervals are apart, else ``within noise``."""
        if self.ci95[0] > self.base_ci95[1]:
            return "better"
        if self.ci95[1] < self.base_ci95[0]:
            return "worse"
        return "within noise"


def compare(evals: list[dict[str, Any]]) -> list[Comparison]:
    """A :class:`Comparison` for every refined evaluation whose dynamics has a base variant, in record
    order."""
    rows = []
    for r in evals:
        if not is_refined(r["policy"]):
            continue
        base = best_base(evals, r["dynamics"])
        if base is None:
            continue
        rows.append(Comparison(r["policy"], r["dynamics"], r["success_rate"], tuple(r["ci95"]), base["policy"],
                               base["success_rate"], tuple(base["ci95"])))
    return rows


def best_base_variants(evals: list[dict[str, Any]]) -> dict[str, str]:
    """``{dynamics: policy}`` of the best base variant on each dynamics that has one."""
    dynamics = sorted({r["dynamics"] for r in evals if is_base_variant(r["policy"])})
    return {d: best["policy"] for d in dynamics if (best := best_base(evals, d)) is not None}


COMPARISON_HEADER = ["refined policy", "dynamics", "success [95% CI]", "best base variant",
                     "base success [95% CI]", "gain", "verdict"]


def _rate(rate: float, ci: tuple[float, float]) -> str:
    return f"{100 * rate:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def comparison_rows(evals: list[dict[str, Any]]) -> list[list[str]]:
    """:data:`COMPARISON_HEADER` rows of :func:`compare` as text (gain in percentage points)."""
    return [[c.policy, c.dynamics, _rate(c.rate, c.ci95), c.base, _rate(c.base_rate, c.base_ci95),
             f"{100 * c.gain:+.1f} pts", c.verdict] for c in compare(evals)]
