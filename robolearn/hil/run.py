"""The HIL run: HIL's parts plugged into the off-policy loop that refinement runs too
(:mod:`robolearn.refine.runner`).

What HIL plugs in: the intervention wrapper around refinement's residual wrapper (a person, or a simulated
one, takes over any env at any step); the mode's sink, router and update rule (:mod:`robolearn.hil.modes`:
HIL-SERL routes interventions into the demonstration buffer, RLIF turns a takeover into a reward, HG-DAgger
clones the interventions); a snapshot of the actor as the acting policy (published every ``publish_every``
updates); and observers for the dataset, the intervention counts and the status line. With ``cfg.split`` the
loop's learner side runs in its own process (runner option ``process``), so the robot keeps its control rate
while the learner updates; without it (``sync``) the loop is deterministic for a seed.

The run directory holds ``config.yaml``, ``checkpoints/`` (the loop's, every ``checkpoint_every`` updates; a
run directory written by the HIL loop before it was the shared one resumes: its ``counters`` are read as the
learner side's), ``metrics.jsonl`` and TensorBoard events (the loop's scalar logs), ``dataset/``, ``policy/``
(the refined residual policy) and ``hil_result.json``.
"""

from __future__ import annotations

import functools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from robolearn.core.config import make_run_dir, save_config
from robolearn.hil.config import HILConfig
from robolearn.hil.intervention import InterventionVecEnv, SuccessLabeler
from robolearn.hil.modes import ModeSink, mode_router, mode_rule, mode_spec
from robolearn.hil.recorder import EpisodeRecorder
from robolearn.hil.sim_human import Intervener
from robolearn.hil.sources import HILSources
from robolearn.refine.acting import SnapshotActing
from robolearn.refine.backends import ProcessBackend, SyncBackend
from robolearn.refine.learner_side import LearnerSide, UpdateClock
from robolearn.refine.methods import METHODS
from robolearn.refine.residual import ResidualVecEnv
from robolearn.refine.runner import LoopSchedule, OffPolicyLoop, StepRecord
from robolearn.refine.saved import save_refined
from robolearn.rl.checkpoint import latest_checkpoint
from robolearn.rl.replay import ReplayBuffer


@dataclass
class HILResult:
    """What a run did, measured in the run."""

    run_dir: str
    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    successes: int = 0
    intervention_steps: int = 0
    takeovers: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    """Every ``log_every`` env steps: env_steps, success_rate and intervention_rate (last 20 training
    episodes), takeovers and intervention_steps (cumulative), updates, weights_version."""
    evals: list[dict[str, float]] = field(default_factory=list)
    """Policy alone (no person): env_steps, success_rate, mean_return, mean_length, updates, weights_version."""
    faults: list[str] = field(default_factory=list)
    learner_restarts: list[dict[str, int]] = field(default_factory=list)
    """Per restart: env_steps when the fault was seen, env_steps when the new learner answered, and the
    update count it restored."""
    dropped_batches: int = 0
    wall_s: float = 0.0


def make_residual_env(cfg: HILConfig, sources: HILSources, num_envs: int, seed: int, classifier: bool = False
                      ) -> ResidualVecEnv:
    """``num_envs`` envs of ``sources`` under the residual wrapper (``cfg.residual``) around a fresh
    ``cfg.base``; with ``classifier`` and ``cfg.reward_classifier`` set, rewarded and ended by that success
    classifier."""
    if classifier and cfg.reward_classifier:
        from robolearn.hil.reward_wrapper import make_classifier_vec_env

        venv = make_classifier_vec_env(sources.make_env, num_envs, cfg.reward_classifier, cfg.classifier_threshold,
                                       seed=seed, device=cfg.device_torch)
    else:
        venv = sources.make_env(num_envs, seed, None)
    return METHODS["residual"].wrap(venv, sources.load_policy(cfg.base, seed), cfg.residual, seed)


def make_env(cfg: HILConfig, sources: HILSources, intervener: Intervener | None = None,
             labeler: SuccessLabeler | None = None) -> InterventionVecEnv:
    """The training env: residual wrapper + the person (``intervener``, default the configured sim human).

    Its reward comes from ``cfg.reward_classifier`` when set (the policy-alone evaluation env keeps the env's)."""
    if intervener is None:
        if cfg.device != "sim-human":
            raise ValueError(f"device {cfg.device!r} needs an intervener built from the device (see robolearn.cli.hil)")
        intervener = sources.sim_human(cfg.num_envs)
    env = make_residual_env(cfg, sources, cfg.num_envs, cfg.seed, classifier=True)
    return InterventionVecEnv(env, intervener, labeler)


def hil_learner_side(cfg: HILConfig, obs_shapes: Mapping[str, tuple[int, ...]], action_dim: int) -> LearnerSide:
    """The learner side of a HIL run: the residual method's learner, ``online`` and ``demo`` buffers, the mode's
    routing and updates, owed updates counted when transitions arrive. Module-level, so that
    ``functools.partial(hil_learner_side, ...)`` can build it in a learner process."""
    spec = mode_spec(cfg.mode)
    shapes = SimpleNamespace(obs_shapes=dict(obs_shapes), action_dim=action_dim, critic_action_dim=action_dim,
                             critic_action_fn=cfg.residual.critic_action_fn(action_dim))
    learner = METHODS["residual"].learner(cfg.learner, shapes, cfg.seed, cfg.device_torch)
    buffers = {"online": ReplayBuffer(obs_shapes, action_dim, cfg.replay_capacity),
               "demo": ReplayBuffer(obs_shapes, action_dim, cfg.replay_capacity)}
    rule = mode_rule(spec, cfg.offline_fraction, cfg.critic_warmup_updates, cfg.min_buffer)
    clock = UpdateClock(cfg.updates_per_env_step, on_arrival=True)
    return LearnerSide(learner, buffers, mode_router(spec), rule, clock, np.random.default_rng(cfg.seed + 3),
                       extra_state={"mode": cfg.mode})


class InterventionStats:
    """Observer: who was in control, episode outcomes (with the person's help), the curve and the status line."""

    def __init__(self, num_envs: int, log_every: int, status: Callable[[str], None] | None, realtime: bool,
                 window: int = 20) -> None:
        self.log_every, self.status, self.realtime = log_every, status, realtime
        self.episodes = self.successes = self.intervention_steps = self.takeovers = 0
        self.recent: deque[tuple[bool, int, int]] = deque(maxlen=window)
        """(success, intervened steps, length) of the last episodes."""
        self._ep: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        """Actor (-1: this process) -> running length and intervened steps of its envs' episodes."""
        self.last_outcome = ""
        self.curve: list[dict[str, float]] = []
        self.next_log: int | None = None
        self._last_status = 0.0

    def __call__(self, loop: OffPolicyLoop, step: StepRecord) -> None:
        self._count(step.info, step.terminated | step.truncated, step.actor)
        if self.next_log is None or loop.env_steps >= self.next_log:
            self.curve.append(self.row(loop))
            self.next_log = loop.env_steps + self.log_every
        if self.status is not None and (time.monotonic() - self._last_status > 0.5 or self.realtime):
            faults = loop.backend.faults
            self.status(self.line(loop) + (f"  | LEARNER FAULT x{len(faults)}" if faults else ""))
            self._last_status = time.monotonic()

    def _count(self, info: Mapping[str, Any], done: np.ndarray, actor: int = -1) -> None:
        mask = np.asarray(info["intervention"], bool)
        self.intervention_steps += int(mask.sum())
        self.takeovers += int(np.asarray(info["takeover"]).sum())
        ep_len, ep_int = self._ep.setdefault(actor, (np.zeros(len(done), np.int64), np.zeros(len(done), np.int64)))
        ep_len += 1
        ep_int += mask
        for i in np.nonzero(done)[0]:
            ok = bool(info["is_success"][i])
            self.episodes += 1
            self.successes += int(ok)
            self.recent.append((ok, int(ep_int[i]), int(ep_len[i])))
            self.last_outcome = (f"ep {self.episodes}: {'success' if ok else 'failure'}, "
                                 f"{ep_int[i]}/{ep_len[i]} steps human")
            ep_len[i] = ep_int[i] = 0

    @property
    def success_rate(self) -> float:
        """Success rate of the last ``window`` training episodes (with the person's help)."""
        return float(np.mean([r[0] for r in self.recent])) if self.recent else 0.0

    @property
    def intervention_rate(self) -> float:
        """Share of steps under human control over the last ``window`` episodes."""
        steps = sum(r[2] for r in self.recent)
        return sum(r[1] for r in self.recent) / steps if steps else 0.0

    def row(self, loop: OffPolicyLoop) -> dict[str, float]:
        return {"env_steps": loop.env_steps, "success_rate": self.success_rate,
                "intervention_rate": self.intervention_rate, "takeovers": self.takeovers,
                "intervention_steps": self.intervention_steps, "episodes": self.episodes,
                "updates": loop.backend.updates, "weights_version": loop.acting.version}

    def line(self, loop: OffPolicyLoop) -> str:
        return (f"steps {loop.env_steps}  episodes {self.episodes}  success {self.success_rate:.2f}  "
                f"intervention {self.intervention_rate:.2f}  takeovers {self.takeovers}  "
                f"weights v{loop.acting.version}  | {self.last_outcome}")


def _recorder(cfg: HILConfig, sources: HILSources, run: Path, env: InterventionVecEnv) -> tuple[Any, Any]:
    """The episode dataset writer and an observer that records every step into it."""
    from robolearn.datasets.writer import EpisodeWriter

    info = sources.dataset_info({"source": "hil", "mode": cfg.mode, "base": cfg.base, "device": cfg.device})
    writer = EpisodeWriter(run / "dataset", info)
    meta = {"source": "hil", "mode": cfg.mode, "intervener": env.intervener.name}
    recorders: dict[int, EpisodeRecorder] = {}  # actor (-1: this process) -> its envs' episodes

    def record(loop: OffPolicyLoop, step: StepRecord) -> None:
        recorder = recorders.setdefault(step.actor, EpisodeRecorder(writer, env.num_envs, meta))
        recorder.add(step.obs, step.info, step.reward, step.terminated, step.truncated)

    return writer, record


def _loop(cfg: HILConfig, sources: HILSources, run: Path, env: InterventionVecEnv, observers: list[Any],
          restart_learner: bool, should_stop: Callable[[], bool] | None) -> OffPolicyLoop:
    """The shared loop with HIL's parts; the learner side in this process or (``cfg.split``) another."""
    acting = SnapshotActing(env.obs_shapes, env.action_dim, cfg.learner.hidden, cfg.learner.algo == "sac",
                            cfg.learner.exploration_noise, cfg.seed + 17)
    factory = functools.partial(hil_learner_side, cfg, dict(env.obs_shapes), env.action_dim)
    backend: Any = (ProcessBackend(factory, run, cfg.publish_every, cfg.checkpoint_every, restart_learner)
                    if cfg.split else SyncBackend(factory(), cfg.publish_every))
    eval_env = (make_residual_env(cfg, sources, min(8, cfg.eval_episodes), cfg.seed + 1) if cfg.eval_every > 0
                else None)
    schedule = LoopSchedule(total_env_steps=cfg.total_env_steps, seed=cfg.seed, eval_every=cfg.eval_every,
                            evaluate=cfg.eval_every > 0, eval_episodes=cfg.eval_episodes,
                            checkpoint_every=cfg.checkpoint_every, checkpoint_unit="updates",
                            collect_deterministic=mode_spec(cfg.mode).deterministic,
                            pace_hz=sources.control_hz if cfg.realtime else 0.0)
    collector = None
    if cfg.runner == "ray":
        if sources.make_collector is None:
            raise ValueError("runner ray needs sources that start actors: build them with "
                             "robolearn.wiring.hil_sources(cfg)")
        collector = sources.make_collector(run)
    return OffPolicyLoop(run, schedule, env, eval_env, acting, ModeSink(mode_spec(cfg.mode), env.num_envs, cfg.n_step,
                         cfg.learner.gamma), backend, observers, should_stop=should_stop, collector=collector)


def run_hil(cfg: HILConfig, sources: HILSources, run_dir: str | Path | None = None, resume: bool = False,
            intervener: Intervener | None = None, labeler: SuccessLabeler | None = None,
            status: Callable[[str], None] | None = None,
            on_step: Callable[[OffPolicyLoop, StepRecord], None] | None = None,
            restart_learner: bool = True, log_every: int = 200,
            should_stop: Callable[[], bool] | None = None) -> HILResult:
    """Run human-in-the-loop refinement of ``cfg.base`` for ``cfg.total_env_steps`` env steps on the envs and
    policies of ``sources``.

    ``intervener`` defaults to the configured simulated human; ``labeler`` ends episodes on a person's
    success label (one env). ``status`` receives the live status line; ``on_step(loop, step)`` is called
    after every collect step (tests use it to kill the learner process). ``resume`` continues from the run's
    latest checkpoint (the learner's state and buffers; the env-step count).
    """
    cfg.validate()
    run = make_run_dir(run_dir, cfg.out_dir, cfg.run_name, f"hil-{cfg.mode}-{cfg.env_id.split('/')[-1]}")
    save_config(cfg, run / "config.yaml")
    if not resume and latest_checkpoint(run) is not None:
        raise FileExistsError(f"{run} already holds a HIL run; pass resume=True (--resume) or use a new run dir")
    env = make_env(cfg, sources, intervener, labeler)
    writer, record = _recorder(cfg, sources, run, env) if cfg.dataset else (None, None)
    stats = InterventionStats(env.num_envs, log_every, status, cfg.realtime)
    observers = [o for o in (record, stats, on_step) if o is not None]
    loop = _loop(cfg, sources, run, env, observers, restart_learner, should_stop)
    try:
        if resume:
            loop.restore()
        out = loop.run()
    finally:
        if writer is not None:
            writer.close()
        loop.close()
    stats.curve.append(stats.row(loop))
    result = HILResult(str(run), env_steps=out.env_steps, updates=out.updates, episodes=stats.episodes,
                       successes=stats.successes, intervention_steps=stats.intervention_steps,
                       takeovers=stats.takeovers, curve=stats.curve, evals=out.evals, faults=out.faults,
                       learner_restarts=out.learner_restarts, dropped_batches=out.dropped_batches, wall_s=out.wall_s)
    save_refined(run / "policy", "residual", cfg.base, cfg.env_id, loop.acting.net, env.obs_shapes,
                 cfg.learner.hidden, cfg.residual.to_dict())
    (run / "hil_result.json").write_text(json.dumps(vars(result), indent=1, default=float))
    return result
