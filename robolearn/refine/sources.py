"""What refinement is given from outside: envs and policies, as factories the caller builds.

Refinement never imports the simulator or the policy loader; ``robolearn refine``, the pipeline, the bench
and the tests pass a :class:`RefineSources` (:func:`robolearn.wiring.refine_sources` builds the usual one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from robolearn.core.protocols import Policy
from robolearn.refine.collectors import Collector

VecEnvFactory = Callable[[int, int], gym.vector.VectorEnv]
"""``(num_envs, seed) -> vector env``: same-step autoreset, dict observations, a bounded Box action space in
physical units; an ended env's ``infos["final_obs"][i]`` and ``infos["final_info"]["is_success"]``."""

PolicyLoader = Callable[[str, int], Policy]
"""``(spec, seed) -> Policy``: a policy spec (``expert:noise=X``, a directory) made a policy for the env."""


@dataclass
class RefineSources:
    """The envs and policies a refinement run uses."""

    make_env: VecEnvFactory
    """Training (``num_envs``, ``seed``) and evaluation (``eval_envs``, ``seed + 1``) envs."""
    load_policy: PolicyLoader
    """The base (``cfg.base``) and a demonstrating policy (``cfg.demos`` when it is not a dataset)."""
    make_base: Callable[[], Policy] | None = None
    """Builds base instances instead of ``load_policy(cfg.base, seed)`` (tests, benchmarks: one for the
    training envs, one for the evaluation envs); the saved refined policy still names ``cfg.base``."""
    make_collector: Callable[[Path], Collector] | None = None
    """``run dir -> `` the collector of runner ``ray`` (actors that build their own envs and base from the
    config; :func:`robolearn.wiring.refine_sources` sets it when the config asks for that runner)."""

    def base(self, spec: str, seed: int) -> Policy:
        """A fresh base instance."""
        return self.make_base() if self.make_base is not None else self.load_policy(spec, seed)
