"""The refinement training loop: collect with the wrapper, update the learner, evaluate, checkpoint.

``train(cfg)`` is what ``robolearn refine`` and the tests call. Env steps count single-env transitions
(a DSRL wrapper step executes ``Ta`` of them per env). The run directory holds ``config.yaml``,
``metrics.jsonl`` (one JSON line per evaluation), TensorBoard events (when tensorboard is installed),
``checkpoints/`` (atomic, see :mod:`robolearn.rl.checkpoint`) and ``policy/`` (the refined policy).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robolearn.core.config import make_run_dir, save_config
from robolearn.core.protocols import Policy
from robolearn.refine.common import load_base, save_refined
from robolearn.refine.config import METHODS, RefineConfig
from robolearn.refine.warm_start import collect_transitions, dataset_transitions
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.replay import NStepAccumulator, ReplayBuffer, sample_mixed, to_torch

EVAL_SEED = 10_000


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


def make_wrapper(cfg: RefineConfig, num_envs: int, seed: int, base: Policy | None = None) -> Any:
    """The method's wrapper around ``num_envs`` envs and a fresh base instance (or ``base`` when given)."""
    from robolearn.sim.vector import make_vec_env

    if cfg.method not in METHODS:
        raise ValueError(f"unknown method '{cfg.method}'; choose from {', '.join(METHODS)}")
    venv = make_vec_env(cfg.env_id, num_envs, seed=seed, env_kwargs=dict(cfg.task) or None)
    if cfg.method == "rlpd":
        from robolearn.refine.direct import DirectVecEnv

        return DirectVecEnv(venv)
    if base is None:
        base = load_base(cfg.base, cfg.env_id, venv.single_action_space, seed=seed)
    if cfg.method == "residual":
        from robolearn.refine.residual import ResidualVecEnv

        return ResidualVecEnv(venv, base, cfg.residual_scale, cfg.residual_plan_steps)
    from robolearn.refine.noise_steering import NoiseSteeringVecEnv

    if cfg.method == "dsrl":
        return NoiseSteeringVecEnv(venv, base, cfg.noise_bound)
    probe = NoiseSteeringVecEnv(venv, base, cfg.noise_bound)
    obs = probe.reset(seed=seed)
    chunk = np.asarray(base.act(obs, np.zeros((num_envs, *probe.noise_shape), np.float32)))
    return NoiseSteeringVecEnv(venv, base, cfg.noise_bound, chunk_dim=int(np.prod(chunk.shape[1:])))


def make_learner(cfg: RefineConfig, env: Any) -> OffPolicyLearner:
    """The learner for ``env``'s shapes (DSRL-NA gets its two-critic learner)."""
    lcfg = cfg.learner
    if cfg.method == "residual":
        lcfg.zero_init_actor = True
    if cfg.method == "dsrl-na":
        from robolearn.refine.dsrl_na import ChunkDecoder, NoiseAliasingLearner

        decoder = ChunkDecoder(env.base, env.scaler, env.bound)
        return NoiseAliasingLearner(lcfg, env.obs_shapes, env.action_dim, env.critic_action_dim, decoder,
                                    seed=cfg.seed, device=cfg.device)
    return OffPolicyLearner(lcfg, env.obs_shapes, env.action_dim, env.critic_action_dim, env.critic_action_fn,
                            seed=cfg.seed, device=cfg.device)


def evaluate_wrapper(env: Any, learner: OffPolicyLearner, episodes: int, seed: int = EVAL_SEED
                     ) -> dict[str, float]:
    """Success rate, mean return and mean episode length (wrapper steps: env steps for a residual, chunks for
    DSRL) of the deterministic actor over ``episodes`` episodes.

    Env ``i`` contributes a fixed quota of its own episodes (``episodes // B``, the first ``episodes % B``
    envs one more), whatever their length. Counting the first ``episodes`` episodes to *finish* instead
    would favour short ones, and with termination on success short episodes are the successes.
    """
    b = env.num_envs
    quota = np.full(b, episodes // b) + (np.arange(b) < episodes % b)
    outcomes: list[list[bool]] = [[] for _ in range(b)]
    returns: list[list[float]] = [[] for _ in range(b)]
    lengths: list[list[int]] = [[] for _ in range(b)]
    running, steps = np.zeros(b), np.zeros(b, int)
    obs = env.reset(seed=seed)
    while any(len(o) < q for o, q in zip(outcomes, quota, strict=True)):
        nxt, reward, term, trunc, info = env.step(learner.act(obs, deterministic=True))
        running += reward
        steps += 1
        for i in np.nonzero(term | trunc)[0]:
            if len(outcomes[i]) < quota[i]:
                outcomes[i].append(bool(info["is_success"][i]))
                returns[i].append(float(running[i]))
                lengths[i].append(int(steps[i]))
            running[i], steps[i] = 0.0, 0
        obs = nxt
    flat_o, flat_r, flat_l = sum(outcomes, []), sum(returns, []), sum(lengths, [])
    return {"success_rate": float(np.mean(flat_o)), "mean_return": float(np.mean(flat_r)),
            "mean_length": float(np.mean(flat_l))}


def fill_offline(cfg: RefineConfig, env: Any) -> ReplayBuffer | None:
    """The offline buffer from ``cfg.demos`` (None without demos or with a WSRL warm start)."""
    if not cfg.demos or cfg.warm_start_episodes > 0:
        return None
    buffer = ReplayBuffer(env.obs_shapes, env.critic_action_dim, cfg.replay_capacity)
    name = cfg.demos.partition(":")[0]
    named = name in ("expert", "random", "zero")
    if cfg.method == "dsrl":
        raise ValueError("--demos: DSRL (noise-space SAC) cannot use action demonstrations; use dsrl-na")
    if cfg.method == "dsrl-na":  # single-step demonstrations cut into executed-chunk transitions
        from robolearn.refine.chunk_data import chunk_transitions, dataset_episodes, rollout_episodes

        if named:
            demo = load_base(cfg.demos, cfg.env_id, env.venv.single_action_space, seed=cfg.seed + 777)
            episodes = rollout_episodes(env.venv, demo, cfg.demo_episodes, seed=cfg.seed + 777)
        else:
            episodes = dataset_episodes(cfg.demos)
        chunk_transitions(env, episodes, buffer, cfg.learner.gamma)
        return buffer
    if named:
        demo = load_base(cfg.demos, cfg.env_id, env.venv.single_action_space, seed=cfg.seed + 777)
        acc = NStepAccumulator(env.num_envs, cfg.n_step, cfg.learner.gamma)
        collect_transitions(env, buffer, acc, cfg.demo_episodes, policy=demo, seed=cfg.seed + 777)
    else:
        dataset_transitions(cfg.demos, env, buffer, cfg.n_step, cfg.learner.gamma)
    return buffer


class _Logger:
    """``metrics.jsonl`` always; TensorBoard scalars when tensorboard is installed."""

    def __init__(self, run_dir: Path) -> None:
        self.file = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115  (closed in close())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb: Any = SummaryWriter(str(run_dir / "tb"))
        except ImportError:
            self.tb = None

    def scalars(self, values: dict[str, float], step: int, record: bool = False) -> None:
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
        if record:
            self.file.write(json.dumps({"env_steps": step, **values}) + "\n")
            self.file.flush()

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


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
              result: RefineResult, log: _Logger, t0: float) -> None:
    scores = evaluate_wrapper(eval_env, learner, cfg.eval_episodes)
    row = {"env_steps": counters["env_steps"], **scores, "updates": learner.num_updates,
           "wall_s": result.wall_s + time.perf_counter() - t0}
    result.evals.append(row)
    if cfg.select_best and (result.best is None or scores["success_rate"] > result.best["success_rate"]):
        result.best = {"env_steps": counters["env_steps"], "success_rate": scores["success_rate"],
                       "actor": copy.deepcopy(learner.actor.state_dict())}
    log.scalars({f"eval/{k}": v for k, v in scores.items()}, counters["env_steps"], record=True)
    counters["next_eval"] = counters["env_steps"] + _period(cfg.eval_every, cfg)


def _period(every: int, cfg: RefineConfig) -> int:
    """Env steps to the next periodic evaluation / checkpoint; ``every`` 0: none until the end of training."""
    return every if every > 0 else cfg.total_env_steps


def train(cfg: RefineConfig, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, base_factory: Callable[[], Policy] | None = None) -> RefineResult:
    """Refine ``cfg.base`` on ``cfg.env_id`` with ``cfg.method``; resumes from the latest checkpoint if asked.

    ``base_factory`` (tests, benchmarks) builds base instances instead of ``cfg.base`` (one for training
    envs, one for evaluation envs); the saved refined policy still names ``cfg.base``.
    """
    cfg.validate()
    run = make_run_dir(run_dir, cfg.out_dir, cfg.run_name, f"refine-{cfg.method}-{cfg.env_id.split('/')[-1]}")
    save_config(cfg, run / "config.yaml")
    make_base = base_factory or (lambda: None)
    env = make_wrapper(cfg, cfg.num_envs, cfg.seed, make_base())
    eval_env = make_wrapper(cfg, cfg.eval_envs, cfg.seed + 1, make_base())
    learner = make_learner(cfg, env)
    online = ReplayBuffer(env.obs_shapes, env.critic_action_dim, cfg.replay_capacity)
    offline = fill_offline(cfg, env)
    acc = NStepAccumulator(env.num_envs, cfg.n_step, cfg.learner.gamma)
    rng, result, log = np.random.default_rng(cfg.seed), RefineResult(str(run)), _Logger(run)
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
            has_data = len(online) > 0 or (offline is not None and len(offline) > 0)  # n-step / chunked
            if counters["env_steps"] >= cfg.random_steps and has_data:  # transitions land a few steps late
                counters["owed"] += cfg.updates_per_env_step * env.num_envs
                n, counters["owed"] = int(counters["owed"]), counters["owed"] - int(counters["owed"])
                if cfg.critic_warmup_burst and learner.num_updates == 0:  # free critic-only updates, once
                    n += cfg.critic_warmup_updates
                tu = time.perf_counter()
                stats = _do_updates(learner, online, offline, n, cfg, rng)
                result.update_s += time.perf_counter() - tu
                if stats and learner.num_updates % 50 < n:
                    log.scalars({f"train/{k}": v for k, v in stats.items()}, counters["env_steps"])
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
        log.scalars({"select_best/env_steps": result.best["env_steps"],
                     "select_best/success_rate": result.best["success_rate"]}, counters["env_steps"])
    _save_policy(cfg, run, env, learner)
    log.scalars({"perf/updates_per_s": result.updates_per_s}, counters["env_steps"])
    log.close()
    env.close()
    eval_env.close()
    return result


def _collect_step(cfg: RefineConfig, env: Any, learner: OffPolicyLearner, acc: NStepAccumulator,
                  online: ReplayBuffer, obs: dict[str, np.ndarray], counters: dict[str, Any],
                  rng: np.random.Generator, log: _Logger) -> dict[str, np.ndarray]:
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
        log.scalars({"train/episode_success": float(info["is_success"][done].mean())}, counters["env_steps"])
    for key in ("residual_abs", "noise_abs"):
        if key in info and counters["env_steps"] % 1000 < env.num_envs:
            log.scalars({f"train/{key}": info[key]}, counters["env_steps"])
    return nxt


def _save_policy(cfg: RefineConfig, run: Path, env: Any, learner: OffPolicyLearner) -> None:
    """The refined policy (base + actor) under ``run/policy`` (not for rlpd, which has no base)."""
    if cfg.method == "rlpd":
        return
    params = ({"scale": cfg.residual_scale, "plan_steps": cfg.residual_plan_steps} if cfg.method == "residual"
              else {"bound": cfg.noise_bound})
    method = "residual" if cfg.method == "residual" else "dsrl"
    save_refined(run / "policy", method, cfg.base, cfg.env_id, learner.actor, env.obs_shapes,
                 cfg.learner.hidden, params)

