"""The refinement training loop: collect with the method's wrapper, update the learner, evaluate, checkpoint.

``train(cfg, sources)`` is what ``robolearn refine``, the pipeline, the bench and the tests call; the method
(``cfg.method``, a key of :data:`~robolearn.refine.methods.METHODS`) supplies the wrapper, the learner and the
offline data. Env steps count single-env transitions (a DSRL wrapper step executes ``Ta`` of them per env).
The run directory holds ``config.yaml``, ``metrics.jsonl`` (one JSON line per evaluation), TensorBoard events
(when tensorboard is installed), ``checkpoints/`` (atomic, see :mod:`robolearn.rl.checkpoint`) and
``policy/`` (the refined policy, :mod:`robolearn.refine.saved`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robolearn.core.config import make_run_dir, save_config
from robolearn.refine.config import RefineConfig
from robolearn.refine.evaluation import evaluate_wrapper
from robolearn.refine.methods import OfflineData, RefineMethod
from robolearn.refine.saved import save_refined
from robolearn.refine.sources import RefineSources
from robolearn.refine.warm_start import collect_transitions
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.replay import NStepAccumulator, ReplayBuffer, sample_mixed, to_torch
from robolearn.rl.scalar_log import ScalarLog


@dataclass
class RefineResult:
    """Outcome of :func:`train`: evaluation curve and throughput figures measured in the run."""

    run_dir: str
    evals: list[dict[str, float]] = field(default_factory=list)
    """One entry per evaluation: env_steps, success_rate, mean_return, mean_length, wall_s."""
    env_steps: int = 0
    updates: int = 0
    wall_s: float = 0.0
    update_s: float = 0.0
    best: dict[str, Any] | None = None
    """``select_best``: env_steps, success_rate and actor weights of the best evaluation so far."""

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.update_s if self.update_s > 0 else 0.0


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


def _do_updates(learner: OffPolicyLearner, online: ReplayBuffer, offline: ReplayBuffer | None, n: int,
                cfg: RefineConfig, rng: np.random.Generator) -> dict[str, float]:
    """``n`` gradient updates; the actor joins after ``critic_warmup_updates`` critic-only updates."""
    stats: dict[str, float] = {}
    if n > 0 and learner.num_updates == 0 and cfg.learner.obs_norm:
        sample = sample_mixed(online, offline, min(len(online), 10_000), rng, cfg.offline_fraction)
        learner.fit_obs_normalization(to_torch(sample, learner.device)["obs"])
    for _ in range(n):
        batch = sample_mixed(online, offline, cfg.learner.batch_size, rng, cfg.offline_fraction,
                             flag=cfg.learner.bc_weight > 0)
        actor = learner.num_updates >= cfg.critic_warmup_updates
        stats = learner.update(to_torch(batch, learner.device), actor=actor)
    return stats


def _restore(learner: OffPolicyLearner, state: dict[str, Any], rng: np.random.Generator, result: RefineResult
             ) -> dict[str, Any]:
    learner.load_state_dict(state["learner"])
    set_rng_state(rng, state["rng"])
    torch.set_rng_state(state["torch_rng"])
    result.evals = list(state["evals"])
    result.updates, result.update_s = learner.num_updates, float(state["update_s"])
    result.best = state.get("best")
    return dict(state["counters"])


def _checkpoint(run: Path, learner: OffPolicyLearner, counters: dict[str, Any], rng: np.random.Generator,
                result: RefineResult, online: ReplayBuffer, offline: ReplayBuffer | None) -> None:
    state = {"learner": learner.state_dict(), "counters": dict(counters), "rng": rng_state(rng),
             "torch_rng": torch.get_rng_state(), "evals": result.evals, "update_s": result.update_s,
             "best": result.best}
    save_checkpoint(run, counters["env_steps"], state, {"online": online, "offline": offline})


def _evaluate(cfg: RefineConfig, eval_env: Any, learner: OffPolicyLearner, counters: dict[str, Any],
              result: RefineResult, log: ScalarLog, t0: float) -> None:
    scores = evaluate_wrapper(eval_env, learner, cfg.eval_episodes)
    row = {"env_steps": counters["env_steps"], **scores, "updates": learner.num_updates,
           "wall_s": result.wall_s + time.perf_counter() - t0}
    result.evals.append(row)
    if cfg.select_best and (result.best is None or scores["success_rate"] > result.best["success_rate"]):
        result.best = {"env_steps": counters["env_steps"], "success_rate": scores["success_rate"],
                       "actor": copy.deepcopy(learner.actor.state_dict())}
    log.write(counters["env_steps"], {f"eval/{k}": v for k, v in scores.items()})
    counters["next_eval"] = counters["env_steps"] + _period(cfg.eval_every, cfg)


def _update_step(cfg: RefineConfig, num_envs: int, learner: OffPolicyLearner, online: ReplayBuffer,
                 offline: ReplayBuffer | None, counters: dict[str, Any], rng: np.random.Generator,
                 result: RefineResult, log: ScalarLog) -> None:
    """After a collect step of ``num_envs`` envs: the updates owed at ``cfg.updates_per_env_step`` (once data
    has landed and the warm-up is over), plus the critic warm-up burst before the first update."""
    has_data = len(online) > 0 or (offline is not None and len(offline) > 0)  # n-step / chunked
    if counters["env_steps"] < cfg.random_steps or not has_data:  # transitions land a few steps late
        return
    counters["owed"] += cfg.updates_per_env_step * num_envs
    n, counters["owed"] = int(counters["owed"]), counters["owed"] - int(counters["owed"])
    if cfg.critic_warmup_burst and learner.num_updates == 0:  # free critic-only updates, once
        n += cfg.critic_warmup_updates
    tu = time.perf_counter()
    stats = _do_updates(learner, online, offline, n, cfg, rng)
    result.update_s += time.perf_counter() - tu
    if stats and learner.num_updates % 50 < n:
        log.write(counters["env_steps"], {f"train/{k}": v for k, v in stats.items()}, record=False)


def _period(every: int, cfg: RefineConfig) -> int:
    """Env steps to the next periodic evaluation / checkpoint; ``every`` 0: none until the end of training."""
    return every if every > 0 else cfg.total_env_steps


def train(cfg: RefineConfig, sources: RefineSources, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, methods: dict[str, RefineMethod] | None = None) -> RefineResult:
    """Refine ``cfg.base`` with ``cfg.method`` on the envs of ``sources``; resumes from the latest checkpoint
    if asked. ``methods`` replaces :data:`~robolearn.refine.methods.METHODS` (tests add methods to a copy)."""
    cfg.validate(methods)
    run = make_run_dir(run_dir, cfg.out_dir, cfg.run_name, f"refine-{cfg.method}-{cfg.env_id.split('/')[-1]}")
    save_config(cfg, run / "config.yaml")
    env = make_wrapper(cfg, sources, cfg.num_envs, cfg.seed, methods)
    eval_env = make_wrapper(cfg, sources, cfg.eval_envs, cfg.seed + 1, methods)
    learner = make_learner(cfg, env, methods)
    online = ReplayBuffer(env.obs_shapes, env.critic_action_dim, cfg.replay_capacity)
    offline = fill_offline(cfg, env, sources, methods)
    acc = NStepAccumulator(env.num_envs, cfg.n_step, cfg.learner.gamma)
    rng, result = np.random.default_rng(cfg.seed), RefineResult(str(run))
    log = ScalarLog(run, step_key="env_steps")
    counters: dict[str, Any] = {"env_steps": 0, "owed": 0.0, "next_eval": 0,
                                "next_ckpt": _period(cfg.checkpoint_every, cfg),
                                "episodes": 0, "successes": 0, "wall_s": 0.0}
    ckpt = latest_checkpoint(run) if resume else None
    if ckpt is not None:
        counters = _restore(learner, load_checkpoint(ckpt, {"online": online, "offline": offline}), rng, result)
    elif cfg.warm_start_episodes > 0:
        ws = collect_transitions(env, online, acc, cfg.warm_start_episodes, rng=rng, seed=cfg.seed + 555)
        counters["env_steps"] += ws["env_steps"]
    result.wall_s, t0 = counters["wall_s"], time.perf_counter()
    bar = tqdm(total=cfg.total_env_steps, initial=counters["env_steps"], disable=not progress, unit="step")
    obs = env.reset(seed=cfg.seed + counters["env_steps"])
    try:
        while True:
            if counters["env_steps"] >= counters["next_eval"] or counters["env_steps"] >= cfg.total_env_steps:
                _evaluate(cfg, eval_env, learner, counters, result, log, t0)
                bar.set_postfix(success=f"{result.evals[-1]['success_rate']:.2f}")
            if counters["env_steps"] >= cfg.total_env_steps:
                break
            obs = _collect_step(cfg, env, learner, acc, online, obs, counters, rng, log)
            bar.update(counters["env_steps"] - bar.n)
            _update_step(cfg, env.num_envs, learner, online, offline, counters, rng, result, log)
            if counters["env_steps"] >= counters["next_ckpt"]:
                counters["wall_s"] = result.wall_s + time.perf_counter() - t0
                counters["next_ckpt"] = counters["env_steps"] + _period(cfg.checkpoint_every, cfg)
                _checkpoint(run, learner, counters, rng, result, online, offline)
    finally:
        bar.close()
    result.wall_s += time.perf_counter() - t0
    counters["wall_s"] = result.wall_s
    result.env_steps, result.updates = counters["env_steps"], learner.num_updates
    _checkpoint(run, learner, counters, rng, result, online, offline)
    if result.best is not None:  # select_best: the refined policy is the best evaluated actor
        learner.actor.load_state_dict(result.best["actor"])
        log.write(counters["env_steps"], {"select_best/env_steps": result.best["env_steps"],
                                          "select_best/success_rate": result.best["success_rate"]}, record=False)
    _save_policy(cfg, run, env, learner, methods)
    log.write(counters["env_steps"], {"perf/updates_per_s": result.updates_per_s}, record=False)
    log.close()
    env.close()
    eval_env.close()
    return result


def _collect_step(cfg: RefineConfig, env: Any, learner: OffPolicyLearner, acc: NStepAccumulator,
                  online: ReplayBuffer, obs: dict[str, np.ndarray], counters: dict[str, Any],
                  rng: np.random.Generator, log: ScalarLog) -> dict[str, np.ndarray]:
    """One wrapper step: uniform actions during warm-up, then the stochastic actor; stores n-step transitions."""
    if counters["env_steps"] < cfg.random_steps:
        action = rng.uniform(-1, 1, (env.num_envs, env.action_dim)).astype(np.float32)
    else:
        action = learner.act(obs, deterministic=False, rng=rng)
    nxt, reward, term, trunc, info = env.step(action)
    out = acc.push(obs, info["critic_action"], reward, term, trunc, info["final_obs"])
    if out is not None:
        online.add(out["obs"], out["action"], out["reward"], out["discount"], out["next_obs"])
    counters["env_steps"] += int(info.get("env_steps", env.num_envs))
    done = term | trunc
    if done.any():
        counters["episodes"] += int(done.sum())
        counters["successes"] += int(info["is_success"][done].sum())
        log.write(counters["env_steps"], {"train/episode_success": float(info["is_success"][done].mean())},
                  record=False)
    for key in ("residual_abs", "noise_abs"):
        if key in info and counters["env_steps"] % 1000 < env.num_envs:
            log.write(counters["env_steps"], {f"train/{key}": info[key]}, record=False)
    return nxt


def _save_policy(cfg: RefineConfig, run: Path, env: Any, learner: OffPolicyLearner,
                 methods: dict[str, RefineMethod] | None) -> None:
    """The refined policy (base spec + actor + the method's params) under ``run/policy``; not for a method
    without a base (rlpd)."""
    if not cfg.plugin(methods).needs_base:
        return
    save_refined(run / "policy", cfg.method, cfg.base, cfg.env_id, learner.actor, env.obs_shapes,
                 cfg.learner.hidden, cfg.method_params(methods).to_dict())
