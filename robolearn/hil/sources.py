"""What a HIL run is given from outside: envs, policies, the simulated person and dataset metadata.

HIL never imports the simulator or the policy loader; ``robolearn hil``, the bench and the tests pass a
:class:`HILSources` (:func:`robolearn.wiring.hil_sources` builds the usual one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from robolearn.hil.sim_human import Intervener
from robolearn.refine.collectors import Collector
from robolearn.refine.sources import PolicyLoader

HILEnvFactory = Callable[[int, int, "dict[str, Any] | None"], gym.vector.VectorEnv]
"""``(num_envs, seed, env_kwargs) -> vector env`` of the run's task, with the run's episode time limit (see
:data:`robolearn.refine.sources.VecEnvFactory` for the contract); ``env_kwargs`` adds task keyword arguments
(the camera settings a reward classifier needs)."""


@dataclass
class HILSources:
    """The envs, policies and helpers of a HIL run."""

    make_env: HILEnvFactory
    load_policy: PolicyLoader
    """The base (``cfg.base``, seeded like its env)."""
    sim_human: Callable[[int], Intervener]
    """``num_envs -> `` the configured simulated person (device ``sim-human``)."""
    control_hz: float
    """The task's control rate (Hz), for real-time pacing."""
    dataset_info: Callable[[Mapping[str, Any]], Any]
    """``extra metadata -> DatasetInfo`` of the run's episode dataset."""
    make_collector: Callable[[Path], Collector] | None = None
    """``run dir -> `` the collector of runner ``ray`` (:func:`robolearn.wiring.hil_sources` sets it)."""
