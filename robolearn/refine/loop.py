"""Refinement's training: its parts plugged into the off-policy loop (:mod:`robolearn.refine.runner`).

``train(cfg, sources)`` is what ``robolearn refine``, the pipeline, the bench and the tests call; the method
(``cfg.method``, a key of :data:`~robolearn.refine.methods.METHODS`) supplies the wrapper, the learner and the
offline data; refinement adds uniform warm-up actions, n-step transitions of the executed action into the
online buffer, RLPD sampling with the offline buffer and the critic warm-up. ``cfg.runner`` says where the
envs step: in this process (``sync``) or in ``cfg.actors`` Ray actors that rebuild the wrapper and base from
the config (``ray``, the collector ``sources.make_collector`` makes; :mod:`robolearn.dist.actors`), the learner,
its replay and checkpoints staying here either way. Env steps count single-env
transitions (a DSRL wrapper step executes ``Ta`` of them per env). The run directory holds ``config.yaml``,
``metrics.jsonl`` (one JSON line per evaluation), TensorBoard events (when tensorboard is installed),
``checkpoints/`` (atomic, see :mod:`robolearn.rl.checkpoint`) and ``policy/`` (the refined policy,
:mod:`robolearn.refine.saved`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.core.config import make_run_dir, save_config
from robolearn.refine.acting import LearnerActing
from robolearn.refine.backends import SyncBackend
from robolearn.refine.collectors import Collector
from robolearn.refine.config import RefineConfig
from robolearn.refine.learner_side import Buffers, LearnerSide, UpdateClock, UpdateRule
from robolearn.refine.methods import OfflineData, RefineMethod
from robolearn.refine.runner import LoopResult, LoopSchedule, NStepSink, Observer, OffPolicyLoop
from robolearn.refine.saved import save_refined
from robolearn.refine.sources import RefineSources
from robolearn.refine.warm_start import collect_transitions
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.replay import Batch, ReplayBuffer, sample_mixed, to_torch

RefineResult = LoopResult
"""Outcome of :func:`train` (the loop's result)."""


def make_wrapper(cfg: RefineConfig, sources: RefineSources, num_envs: int, seed: int,
                 methods: dict[str, RefineMethod] | None = None) -> Any:
    """The method's wrapper around ``num_envs`` envs (seeded ``seed``) and a fresh base instance."""
    method = cfg.plugin(methods)
    venv = sources.make_env(num_envs, seed)
    base = sources.base(cfg.base, seed) if method.needs_base else None
    return method.wrap(venv, base, cfg.method_params(methods), seed)


def make_learner(cfg: RefineConfig, env: Any, methods: dict[str, RefineMethod] | None = None) -> OffPolicyLearner:
    """The method's learner for ``env``'s shapes."""
    return cfg.plugin(methods).learner(cfg.learner, env, cfg.seed, cfg.device)


def fill_offline(cfg: RefineConfig, env: Any, sources: RefineSources,
                 methods: dict[str, RefineMethod] | None = None) -> ReplayBuffer | None:
    """The offline buffer from ``cfg.demos`` (None without demos or with a WSRL warm start)."""
    if not cfg.demos or cfg.warm_start_episodes > 0:
        return None
    buffer = ReplayBuffer(env.obs_shapes, env.critic_action_dim, cfg.replay_capacity)
    data = OfflineData(cfg.demos, cfg.demo_episodes, cfg.seed + 777, cfg.n_step, cfg.learner.gamma,
                       sources.load_policy)
    cfg.plugin(methods).fill_offline(env, buffer, data)
    return buffer


def to_online(batch: Batch, buffers: Buffers) -> None:
    """Refinement's router: every transition into the online buffer."""
    online = buffers["online"]
    assert online is not None
    online.add(batch["obs"], batch["action"], batch["reward"], batch["discount"], batch["next_obs"])


def rlpd_updates(cfg: RefineConfig) -> UpdateRule:
    """Refinement's update rule: RLPD batches (``offline_fraction`` from the offline buffer); the actor joins
    after ``critic_warmup_updates`` critic-only updates (all at once before the first owed one with
    ``critic_warmup_burst``); the observation normalization is fitted before the first update."""

    def rule(learner: OffPolicyLearner, buffers: Buffers, n: int, rng: np.random.Generator) -> dict[str, float]:
        online, offline = buffers["online"], buffers["offline"]
        assert online is not None
        if cfg.critic_warmup_burst and learner.num_updates == 0:  # free critic-only updates, once
            n += cfg.critic_warmup_updates
        stats: dict[str, float] = {}
        if n > 0 and learner.num_updates == 0 and cfg.learner.obs_norm:
            # with random_steps 0 the first update can come before any online transition: fit on the demos then
            size = min(len(online) + (len(offline) if offline is not None else 0), 10_000)
            sample = sample_mixed(online, offline, size, rng, cfg.offline_fraction)
            learner.fit_obs_normalization(to_torch(sample, learner.device)["obs"])
        for _ in range(n):
            batch = sample_mixed(online, offline, cfg.learner.batch_size, rng, cfg.offline_fraction,
                                 flag=cfg.learner.bc_weight > 0)
            actor = learner.num_updates >= cfg.critic_warmup_updates
            stats = learner.update(to_torch(batch, learner.device), actor=actor)
        return stats

    return rule


def schedule(cfg: RefineConfig) -> LoopSchedule:
    """Refinement's schedule: evaluations and checkpoints by env steps (0: at the ends only)."""
    return LoopSchedule(total_env_steps=cfg.total_env_steps, seed=cfg.seed, eval_every=cfg.eval_every,
                        eval_episodes=cfg.eval_episodes, checkpoint_every=cfg.checkpoint_every,
                        checkpoint_unit="env_steps", random_steps=cfg.random_steps, select_best=cfg.select_best)


def remote_collector(cfg: RefineConfig, sources: RefineSources, learner: OffPolicyLearner, run: Path
                     ) -> Collector | None:
    """The collector of ``cfg.runner`` (None: the loop's own env); refuses a method that acts through more
    than its actor network (V-GPS scores candidates with its critic, which the actors are not sent)."""
    if cfg.runner == "sync":
        return None
    if type(learner).act is not OffPolicyLearner.act:
        raise ValueError(f"runner {cfg.runner}: method {cfg.method} acts through more than its actor network; "
                         "use runner sync")
    assert sources.make_collector is not None  # train() refuses runner ray without it, before the run dir
    return sources.make_collector(run)


def train(cfg: RefineConfig, sources: RefineSources, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, methods: dict[str, RefineMethod] | None = None,
          observers: Sequence[Observer] = ()) -> RefineResult:
    """Refine ``cfg.base`` with ``cfg.method`` on the envs of ``sources``; resumes from the latest checkpoint
    if asked. ``methods`` replaces :data:`~robolearn.refine.methods.METHODS` (tests add methods to a copy);
    ``observers`` are called after every collect step (tests)."""
    cfg.validate(methods)
    if cfg.runner != "sync" and sources.make_collector is None:
        raise ValueError(f"runner {cfg.runner} needs sources that start actors: build them with "
                         "robolearn.wiring.refine_sources(cfg)")
    run = make_run_dir(run_dir, cfg.out_dir, cfg.run_name, f"refine-{cfg.method}-{cfg.env_id.split('/')[-1]}")
    save_config(cfg, run / "config.yaml")
    env = make_wrapper(cfg, sources, cfg.num_envs, cfg.seed, methods)
    eval_env = make_wrapper(cfg, sources, cfg.eval_envs, cfg.seed + 1, methods)
    learner = make_learner(cfg, env, methods)
    buffers: Buffers = {"online": ReplayBuffer(env.obs_shapes, env.critic_action_dim, cfg.replay_capacity),
                        "offline": fill_offline(cfg, env, sources, methods)}
    rng = np.random.default_rng(cfg.seed)
    side = LearnerSide(learner, buffers, to_online, rlpd_updates(cfg),
                       UpdateClock(cfg.updates_per_env_step, random_steps=cfg.random_steps), rng)
    sink = NStepSink(env.num_envs, cfg.n_step, cfg.learner.gamma)
    loop = OffPolicyLoop(run, schedule(cfg), env, eval_env, LearnerActing(learner, rng), sink, SyncBackend(side),
                         observers, progress=progress, collector=remote_collector(cfg, sources, learner, run))
    try:
        if (loop.restore() if resume else None) is None and cfg.warm_start_episodes > 0:
            online = buffers["online"]
            assert online is not None
            ws = collect_transitions(env, online, sink.acc, cfg.warm_start_episodes, rng=rng, seed=cfg.seed + 555)
            loop.counters["env_steps"] += ws["env_steps"]
        result = loop.run()
        if result.best is not None:  # select_best: the refined policy is the best evaluated actor
            learner.actor.load_state_dict(result.best["actor"])
            loop.log.write(result.env_steps, {"select_best/env_steps": result.best["env_steps"],
                                              "select_best/success_rate": result.best["success_rate"]}, record=False)
        _save_policy(cfg, run, env, learner, methods)
        loop.log.write(result.env_steps, {"perf/updates_per_s": result.updates_per_s}, record=False)
    finally:
        loop.close()
    return result


def _save_policy(cfg: RefineConfig, run: Path, env: Any, learner: OffPolicyLearner,
                 methods: dict[str, RefineMethod] | None) -> None:
    """The refined policy (base spec + actor + the method's params) under ``run/policy``; not for a method
    without a base (rlpd)."""
    if not cfg.plugin(methods).needs_base:
        return
    save_refined(run / "policy", cfg.method, cfg.base, cfg.env_id, learner.actor, env.obs_shapes,
                 cfg.learner.hidden, cfg.method_params(methods).to_dict())
