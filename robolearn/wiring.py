"""Plugs the simulator and the policy loader into refinement and HIL, which see neither: the usual
:class:`~robolearn.refine.sources.RefineSources` and :class:`~robolearn.hil.sources.HILSources` of a config.

``robolearn refine`` / ``robolearn hil``, the pipeline, the benchmarks and the tests build their sources
here; a real robot or another simulator would pass its own factories instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from robolearn.core.protocols import Policy
from robolearn.policy_factory import load_policy
from robolearn.refine.sources import RefineSources
from robolearn.sim import vector
from robolearn.sim.registry import gym_make, register_all

if TYPE_CHECKING:
    from robolearn.hil.config import HILConfig
    from robolearn.hil.sim_human import SimHuman, SimHumanConfig
    from robolearn.hil.sources import HILSources
    from robolearn.refine.config import RefineConfig


def make_vec_env(env_id: str, num_envs: int, seed: int, env_kwargs: dict[str, Any] | None = None,
                 max_episode_steps: int | None = None) -> gym.vector.VectorEnv:
    """:func:`robolearn.sim.vector.make_vec_env` after registering robolearn's tasks (a fresh interpreter)."""
    register_all()
    return vector.make_vec_env(env_id, num_envs, seed=seed, env_kwargs=env_kwargs, max_episode_steps=max_episode_steps)


def policy_loader(env_id: str, device: str = "cpu") -> Callable[[str, int], Policy]:
    """``(spec, seed) -> Policy`` for ``env_id`` (:func:`robolearn.policy_factory.load_policy`), networks on ``device``
    (a device setting)."""
    return lambda spec, seed: load_policy(spec, env_id, seed=seed, device=device)


def refine_sources(cfg: RefineConfig, make_base: Callable[[], Policy] | None = None) -> RefineSources:
    """Envs of ``cfg.env_id`` with ``cfg.task`` settings under ``cfg.dynamics`` and ``cfg.visual``, observing
    ``cfg.obs_keys`` only (when set), policies from specs (or ``make_base`` for the base); with
    ``cfg.runner == "ray"`` the Ray actors' collector (:func:`ray_collector`: the actors rebuild the base from
    ``cfg.base``, not from ``make_base``)."""
    from robolearn.sim.observation_keys import SelectObservationKeys
    from robolearn.sim.randomization import load_dynamics_preset
    from robolearn.sim.visual import visual_kwargs

    task_kwargs = dict(cfg.task)
    if cfg.dynamics != "nominal":
        task_kwargs["randomization"] = load_dynamics_preset(cfg.env_id, cfg.dynamics)
    task_kwargs.update(visual_kwargs(cfg.env_id, cfg.visual))
    task_kwargs = task_kwargs or None

    def make_env(num_envs: int, seed: int) -> gym.vector.VectorEnv:
        venv = make_vec_env(cfg.env_id, num_envs, seed=seed, env_kwargs=task_kwargs)
        return SelectObservationKeys(venv, cfg.obs_keys) if cfg.obs_keys else venv

    collector = functools.partial(ray_collector, refine_actor_parts, cfg) if cfg.runner == "ray" else None
    return RefineSources(make_env, policy_loader(cfg.env_id, cfg.device), make_base, collector)


def refine_actor_parts(cfg: RefineConfig, index: int) -> tuple[Any, Any, Any]:
    """What Ray actor ``index`` of a refinement run builds from the config: the method's wrapper around
    ``cfg.num_envs`` envs and a fresh base (on the CPU), n-step transitions, a snapshot of the actor; seeded
    for that actor."""
    from dataclasses import replace

    from robolearn.refine.acting import SnapshotActing
    from robolearn.refine.collectors import NStepSink
    from robolearn.refine.loop import make_wrapper

    seed = cfg.seed + 10_007 * (index + 1)
    local = replace(cfg, runner="sync", device="cpu")
    env = make_wrapper(local, refine_sources(local), cfg.num_envs, seed)
    lc = cfg.learner
    acting = SnapshotActing(env.obs_shapes, env.action_dim, lc.hidden, lc.algo == "sac", lc.exploration_noise, seed)
    return env, NStepSink(env.num_envs, cfg.n_step, lc.gamma), acting


def ray_collector(actor_parts: Callable[[Any, int], tuple[Any, Any, Any]], cfg: RefineConfig | HILConfig,
                  run: Path) -> Any:
    """The Ray actors' collector of a refinement or HIL run (:class:`robolearn.dist.actors.RayCollector`), each
    actor building ``actor_parts(cfg, index)``."""
    from robolearn.dist.actors import RayCollector

    return RayCollector(functools.partial(actor_parts, cfg), cfg.actors, cfg.weight_sync_every, run,
                        cfg.ray_address)


def sim_human(cfg: SimHumanConfig, env_id: str, num_envs: int) -> SimHuman:
    """The task's scripted expert as a simulated person: judge (noise 0) and hand (noise ``cfg.noise``)."""
    from robolearn.hil.sim_human import SimHuman

    env = gym_make(env_id)
    low, high = env.action_space.low, env.action_space.high
    env.close()
    judge = load_policy("expert:noise=0", env_id, seed=cfg.seed)
    hand = load_policy(f"expert:noise={cfg.noise}", env_id, seed=cfg.seed + 1)
    return SimHuman(cfg, judge, hand, low, high, num_envs)


def hil_sources(cfg: HILConfig) -> HILSources:
    """Envs of ``cfg.env_id`` (time limit ``cfg.max_episode_steps``, 0: the registry's), policies from specs,
    the configured simulated person, the task's control rate and dataset metadata."""
    from robolearn.hil.sources import HILSources

    limit = cfg.max_episode_steps or None

    def make_env(num_envs: int, seed: int, env_kwargs: dict[str, Any] | None) -> gym.vector.VectorEnv:
        return make_vec_env(cfg.env_id, num_envs, seed=seed, env_kwargs=env_kwargs, max_episode_steps=limit)

    def dataset_info(extra: Mapping[str, Any]) -> Any:
        from robolearn.collect import dataset_info_for

        probe = gym_make(cfg.env_id)
        try:
            return dataset_info_for(probe, cfg.env_id, [], 84, dict(extra))
        finally:
            probe.close()

    collector = functools.partial(ray_collector, hil_actor_parts, cfg) if cfg.runner == "ray" else None
    return HILSources(make_env=make_env, load_policy=policy_loader(cfg.env_id, cfg.device_torch),
                      sim_human=lambda n: sim_human(cfg.sim_human, cfg.env_id, n),
                      control_hz=control_hz(cfg.env_id), dataset_info=dataset_info, make_collector=collector)


def hil_actor_parts(cfg: HILConfig, index: int) -> tuple[Any, Any, Any]:
    """What Ray actor ``index`` of a HIL run builds from the config: the intervention wrapper (the residual
    around a fresh base, with a simulated person of its own) over ``cfg.num_envs`` envs on the CPU, the mode's
    sink, a snapshot of the actor; seeded for that actor."""
    from dataclasses import replace

    from robolearn.hil.modes import ModeSink, mode_spec
    from robolearn.hil.run import make_env
    from robolearn.refine.acting import SnapshotActing

    offset = 10_007 * (index + 1)
    local = replace(cfg, runner="sync", device_torch="cpu", seed=cfg.seed + offset,
                    sim_human=replace(cfg.sim_human, seed=cfg.sim_human.seed + offset))
    env = make_env(local, hil_sources(local))
    lc = cfg.learner
    acting = SnapshotActing(env.obs_shapes, env.action_dim, lc.hidden, lc.algo == "sac", lc.exploration_noise,
                            local.seed + 17)
    return env, ModeSink(mode_spec(cfg.mode), env.num_envs, cfg.n_step, lc.gamma), acting



def control_hz(env_id: str, task: Mapping[str, Any] | None = None) -> float:
    """The task's control rate (Hz; 20 when the env does not say) under the task settings ``task``."""
    probe = gym_make(env_id, **(task or {}))
    try:
        return float(getattr(getattr(probe.unwrapped, "cfg", None), "control_hz", 20.0))
    finally:
        probe.close()
