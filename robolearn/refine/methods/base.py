"""What a refinement method is: a plug-in the refinement loop, the CLI, the pipeline, the bench and the
refined-policy loader drive through :data:`robolearn.refine.methods.METHODS`.

A method supplies

* ``params_type``: a :class:`MethodParams` dataclass (its settings; a preset's ``params:`` mapping is
  loaded into it with unknown keys rejected by name, and it is saved in the refined-policy directory);
* :meth:`RefineMethod.wrap`: the env wrapper around the frozen base (the wrapper contract of
  :mod:`robolearn.refine.common`);
* :meth:`RefineMethod.learner`: the off-policy learner for the wrapper's shapes;
* :meth:`RefineMethod.fill_offline`: demonstrations into the offline buffer, relabelled as the method needs;
* :meth:`RefineMethod.policy`: the refined :class:`~robolearn.core.protocols.Policy` from a saved actor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import torch

from robolearn.core.config import ConfigError, from_dict, to_dict
from robolearn.core.protocols import Policy
from robolearn.refine.sources import PolicyLoader
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.networks import Actor
from robolearn.rl.replay import NStepAccumulator, ReplayBuffer

P = TypeVar("P", bound="MethodParams")

@dataclass
class MethodParams:
    """A method's parameters. Subclasses are dataclasses whose fields carry docstrings (``--help``)."""

    def validate(self) -> None:
        """Raise a ValueError naming the first bad setting (the default accepts every value)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML (``config.yaml``'s ``params``, ``refined.yaml``'s ``params``)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[P], data: dict[str, Any] | None, source: str = "params") -> P:
        """Build and validate from a mapping; unknown keys and wrong types raise a one-line ConfigError."""
        params = from_dict(cls, data, source)
        try:
            params.validate()
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from err
        return params

    @classmethod
    def load(cls: type[P], directory: str | Path) -> P:
        """The params saved in a refined-policy directory."""
        from robolearn.refine.saved import read_refined

        return cls.from_dict(read_refined(directory).params, f"{Path(directory)} params")

    @classmethod
    def keys(cls) -> list[str]:
        return sorted(f.name for f in dataclasses.fields(cls))


@dataclass
class NoParams(MethodParams):
    """A method without settings of its own."""


@dataclass
class OfflineData:
    """Where demonstrations come from and how transitions are built from them."""

    demos: str
    """A robolearn dataset directory, or a policy spec (e.g. ``expert:noise=0``) rolled out."""
    episodes: int
    """Episodes rolled out when ``demos`` names a policy."""
    seed: int
    """Seed of the demonstrating policy and of its rollouts."""
    n_step: int
    gamma: float
    load_policy: PolicyLoader

    @property
    def is_dataset(self) -> bool:
        """``demos`` is a dataset directory (anything else is a policy spec)."""
        return Path(self.demos).is_dir()


class RefineMethod:
    """The default parts of a method (a plain SAC / TD3 learner, n-step demonstration transitions); a
    method overrides :meth:`wrap` and :meth:`policy` and whatever else differs."""

    params_type: ClassVar[type[MethodParams]] = NoParams
    needs_base: ClassVar[bool] = True
    """Wraps a base policy (and saves a refined policy); False for learning from scratch."""
    zero_init_actor: ClassVar[bool] = False
    """Start the actor at exactly zero output (a residual starts at the base)."""
    needs_generative_base: ClassVar[bool] = False
    """Steers the base's initial noise, so the base must be generative (a diffusion policy)."""
    demos_by_default: ClassVar[bool] = False
    """A pipeline branch feeds the run's demonstrations to the offline buffer unless its settings say
    otherwise (RLPD-style 50/50 sampling)."""

    def wrap(self, venv: gym.vector.VectorEnv, base: Policy | None, params: Any, seed: int) -> Any:
        """The wrapper around ``venv`` (``B`` envs) and ``base``; ``seed`` seeds any probing reset."""
        raise NotImplementedError

    def learner(self, lcfg: LearnerConfig, env: Any, seed: int, device: str | torch.device) -> OffPolicyLearner:
        """The learner for ``env``'s shapes."""
        if self.zero_init_actor:
            lcfg.zero_init_actor = True
        return OffPolicyLearner(lcfg, env.obs_shapes, env.action_dim, env.critic_action_dim, env.critic_action_fn,
                                seed=seed, device=device)

    def fill_offline(self, env: Any, buffer: ReplayBuffer, data: OfflineData) -> None:
        """Demonstrations into ``buffer`` as n-step transitions of ``env``'s (one env step per wrapper step)."""
        from robolearn.refine.warm_start import collect_transitions, dataset_transitions

        if data.is_dataset:
            dataset_transitions(data.demos, env, buffer, data.n_step, data.gamma, self.relabel(env))
            return
        demo = data.load_policy(data.demos, data.seed)
        acc = NStepAccumulator(env.num_envs, data.n_step, data.gamma)
        collect_transitions(env, buffer, acc, data.episodes, policy=demo, seed=data.seed)

    def relabel(self, env: Any) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """How a dataset frame ``{key: (1, ...)}`` becomes a learner observation (None: as it is)."""
        return None

    def load_actor(self, directory: str | Path, meta: Any, device: str | torch.device = "cpu") -> Any:
        """The saved actor of a refined-policy directory (``meta``: its ``RefinedMeta``), in eval mode on
        ``device`` (a device setting or a ``torch.device``)."""
        from robolearn.refine.saved import load_actor

        return load_actor(directory, meta, device)

    def policy(self, base: Policy, actor: Actor, action_space: gym.spaces.Box, params: Any) -> Policy:
        """The refined policy: ``base`` with the saved ``actor`` (``action_space`` is the env's)."""
        raise NotImplementedError
