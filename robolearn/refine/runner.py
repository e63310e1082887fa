"""The off-policy loop that refinement (``robolearn refine``) and HIL (``robolearn hil``) both run.

One collect step: the acting policy picks actions for the ``B`` envs of a wrapper (uniform ones during
``random_steps``), the wrapper steps, the :class:`Sink` turns the step into n-step transitions, and the backend
stores them, accounts the update-to-data ratio and runs the owed updates
(:mod:`robolearn.refine.learner_side`, in this process or another: :mod:`robolearn.refine.backends`). The
steps come from a collector (:mod:`robolearn.refine.collectors`): the loop's own env (runner ``sync``), or
actors that step envs of their own and ship their steps here (runner ``ray``,
:class:`robolearn.dist.actors.RayCollector`); each step is accounted the same way.
Around it: evaluations of the acting policy alone (at the start, every ``eval_every`` env steps, at the end),
checkpoints (every ``checkpoint_every`` env steps or updates, and at the end) and resume, the best evaluated
actor (``select_best``), scalar logs (``metrics.jsonl``, TensorBoard) and observers called after every step.

What a method family plugs in is data: the env wrapper, the acting policy (:mod:`robolearn.refine.acting`),
the sink, the learner side's router and update rule, observers. Refinement's are in
:mod:`robolearn.refine.loop`; HIL's (the intervention wrapper, per-mode transitions, routing and losses) in
:mod:`robolearn.hil.run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from robolearn.refine.acting import Acting
from robolearn.refine.backends import Backend
from robolearn.refine.collectors import Collected, Collector, LocalCollector, NStepSink, Sink, StepRecord
from robolearn.refine.evaluation import evaluate_wrapper
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
from robolearn.rl.scalar_log import ScalarLog

__all__ = ["LoopResult", "LoopSchedule", "NStepSink", "Observer", "OffPolicyLoop", "Sink", "StepRecord"]


@dataclass
class LoopSchedule:
    """How long the loop runs and when it evaluates, checkpoints and publishes."""

    total_env_steps: int
    seed: int
    """The training envs reset with ``seed + env_steps`` (at the start and at a resume)."""
    eval_every: int = 0
    """Env steps between evaluations (0: at the start and the end only)."""
    evaluate: bool = True
    """Evaluate at all (needs an evaluation env)."""
    eval_episodes: int = 32
    checkpoint_every: int = 0
    """Units of ``checkpoint_unit`` between checkpoints (0: only at the end)."""
    checkpoint_unit: Literal["env_steps", "updates"] = "env_steps"
    random_steps: int = 0
    """Uniform actions for this many env steps first."""
    collect_deterministic: bool = False
    """Collect with the deterministic actor (no exploration)."""
    select_best: bool = False
    """Keep the actor of the best evaluation (``LoopResult.best``)."""
    pace_hz: float = 0.0
    """Pace collect steps at this rate (a robot's control rate; 0: as fast as possible)."""

    def period(self, every: int) -> int:
        return every if every > 0 else self.total_env_steps


@dataclass
class LoopResult:
    """Outcome of a loop: evaluation curve and throughput figures measured in the run."""

    run_dir: str
    evals: list[dict[str, float]] = field(default_factory=list)
    """One entry per evaluation: env_steps, success_rate, mean_return, mean_length, updates, wall_s."""
    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    successes: int = 0
    wall_s: float = 0.0
    update_s: float = 0.0
    best: dict[str, Any] | None = None
    """``select_best``: env_steps, success_rate and actor weights of the best evaluation so far."""
    faults: list[str] = field(default_factory=list)
    """One line per fault of the learner process or of an actor."""
    learner_restarts: list[dict[str, int]] = field(default_factory=list)
    dropped_batches: int = 0
    actor_restarts: int = 0
    """Actors restarted after they died (runner ``ray``)."""
    lost_env_steps: int = 0
    """Env steps that actors which died had collected and never delivered (runner ``ray``)."""

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.update_s if self.update_s > 0 else 0.0


Observer = Callable[["OffPolicyLoop", StepRecord], None]
"""Called after every collect step, its updates, weight publishing and checkpoint (episode recording,
intervention counts, status lines, test hooks)."""


class OffPolicyLoop:
    """Collect -> transitions -> replay -> owed updates, with evaluation, checkpoints and resume."""

    def __init__(self, run: Path, schedule: LoopSchedule, env: Any, eval_env: Any | None, acting: Acting,
                 sink: Sink, backend: Backend, observers: Sequence[Observer] = (), progress: bool = False,
                 should_stop: Callable[[], bool] | None = None, collector: Collector | None = None) -> None:
        self.run_dir, self.schedule, self.env, self.eval_env = run, schedule, env, eval_env
        self.acting, self.sink, self.backend = acting, sink, backend
        self.collector: Collector = collector if collector is not None else LocalCollector(env, sink)
        """Where the envs step: ``env`` and ``sink`` here (default), or actors elsewhere."""
        self.observers, self.progress, self.should_stop = list(observers), progress, should_stop
        self.log = ScalarLog(run, step_key="env_steps")
        self.result = LoopResult(str(run))
        self.counters: dict[str, Any] = {"env_steps": 0, "next_eval": 0,
                                         "next_ckpt": schedule.period(schedule.checkpoint_every),
                                         "episodes": 0, "successes": 0, "wall_s": 0.0}
        self._ckpt_updates = 0
        self._faults_logged = 0
        self._t0 = time.perf_counter()

    @property
    def env_steps(self) -> int:
        return int(self.counters["env_steps"])

    def restore(self) -> dict[str, Any] | None:
        """Continue from the run's latest checkpoint (learner side, buffers, counters, evaluations); its state,
        or None when the run has none."""
        if self.backend.side is not None:
            state = self.backend.side.restore(self.run_dir)
        else:  # the learner process restores itself; the collector continues from its env-step count
            path = latest_checkpoint(self.run_dir)
            state = None if path is None else load_checkpoint(path, {})
        if state is None:
            return None
        self.counters.update(state["counters"])
        self.counters.pop("owed", None)  # a checkpoint written before the loops were one
        self.counters.setdefault("next_eval", self.env_steps)
        self.result.evals = list(state.get("evals", []))
        self.result.update_s = self.backend.update_s = float(state.get("update_s", 0.0))
        self.result.best = state.get("best")
        return state

    def run(self) -> LoopResult:
        """Collect until ``total_env_steps`` (or ``should_stop``), then evaluate and checkpoint a last time."""
        s = self.schedule
        self.result.wall_s, self._t0 = float(self.counters["wall_s"]), time.perf_counter()
        self.backend.start(self.acting)
        self._ckpt_updates = self.backend.updates
        bar = tqdm(total=s.total_env_steps, initial=self.env_steps, disable=not self.progress, unit="step")
        try:
            t0 = time.perf_counter()
            self.collector.start(s.seed + self.env_steps)
            if not isinstance(self.collector, LocalCollector):  # actors elsewhere: what starting them cost
                self.log.write(self.env_steps, {"perf/collector_start_s": time.perf_counter() - t0})
            while self.env_steps < s.total_env_steps and not (self.should_stop and self.should_stop()):
                tick = time.monotonic()
                if s.evaluate and self.env_steps >= self.counters["next_eval"]:
                    self._evaluate()
                    bar.set_postfix(success=f"{self.result.evals[-1]['success_rate']:.2f}")
                steps = self.collector.collect(self.acting, uniform=self.env_steps < s.random_steps,
                                               deterministic=s.collect_deterministic)
                for step in steps:
                    if self.env_steps >= s.total_env_steps:  # an actor's surplus steps at the end
                        break
                    self._step(step)
                    bar.update(self.env_steps - bar.n)
                self._log_faults()
                if s.pace_hz > 0:
                    time.sleep(max(0.0, 1.0 / s.pace_hz - (time.monotonic() - tick)))
            for tail in self.collector.flush():
                self.backend.send(tail, 0, self.env_steps, train=False)
            self._log_faults()
        except KeyboardInterrupt:  # a person stopped the run: keep what was learned
            self._checkpoint()
            raise
        finally:
            bar.close()
            self.collector.stop()
            self.backend.stop(self.acting)
        return self._finish()

    def _step(self, step: Collected) -> None:
        """Account one collected step: counters, logs, the transitions to the backend (which runs the owed
        updates), weights, checkpoints and observers."""
        c, record = self.counters, step.record
        c["env_steps"] += step.env_steps
        done = record.terminated | record.truncated
        if done.any():
            c["episodes"] += int(done.sum())
            c["successes"] += int(record.info["is_success"][done].sum())
            self.log.write(self.env_steps, {"train/episode_success": float(record.info["is_success"][done].mean())},
                           record=False)
        for key in ("residual_abs", "noise_abs"):
            if key in record.info and self.env_steps % 1000 < step.units:
                self.log.write(self.env_steps, {f"train/{key}": record.info[key]}, record=False)
        stats, ran = self.backend.send(step.batch, step.units, self.env_steps)
        if stats and self.backend.updates % 50 < ran:
            self.log.write(self.env_steps, {f"train/{k}": v for k, v in stats.items()}, record=False)
        self.backend.poll(self.acting, self.env_steps)
        self._maybe_checkpoint()
        for observe in self.observers:
            observe(self, record)

    def _log_faults(self) -> None:
        """A collector's new faults: one ``metrics.jsonl`` line each, with the running restart and lost-step
        counts."""
        col = self.collector
        for line in col.faults[self._faults_logged:]:
            self.log.write(self.env_steps, {"faults/actor_restarts": col.restarts,
                                            "faults/lost_env_steps": col.lost_env_steps})
            if self.progress:
                tqdm.write(f"fault: {line}")
        self._faults_logged = len(col.faults)

    def _evaluate(self) -> None:
        scores = evaluate_wrapper(self.eval_env, self.acting, self.schedule.eval_episodes)
        row = {"env_steps": self.env_steps, **scores, "updates": self.backend.updates,
               "weights_version": self.acting.version, "wall_s": self._wall()}
        self.result.evals.append(row)
        best = self.result.best
        if self.schedule.select_best and (best is None or scores["success_rate"] > best["success_rate"]):
            self.result.best = {"env_steps": self.env_steps, "success_rate": scores["success_rate"],
                                "actor": self.acting.actor_state()}
        self.log.write(self.env_steps, {f"eval/{k}": v for k, v in scores.items()})
        self.counters["next_eval"] = self.env_steps + self.schedule.period(self.schedule.eval_every)

    def _wall(self) -> float:
        return self.result.wall_s + time.perf_counter() - self._t0

    def _maybe_checkpoint(self) -> None:
        s, c = self.schedule, self.counters
        if s.checkpoint_unit == "env_steps" and self.env_steps >= c["next_ckpt"]:
            c["next_ckpt"] = self.env_steps + s.period(s.checkpoint_every)
            self._checkpoint()
        elif s.checkpoint_unit == "updates" and 0 < s.checkpoint_every <= self.backend.updates - self._ckpt_updates:
            self._ckpt_updates = self.backend.updates
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Learner side, buffers and the loop's state (the learner process checkpoints itself)."""
        side = self.backend.side
        if side is None:
            return
        self.counters["wall_s"] = self._wall()
        step = self.env_steps if self.schedule.checkpoint_unit == "env_steps" else self.backend.updates
        side.checkpoint(self.run_dir, step, {
            "counters": dict(self.counters), "evals": self.result.evals, "update_s": self.backend.update_s,
            "best": self.result.best})

    def _finish(self) -> LoopResult:
        """The last evaluation and checkpoint; the result's figures."""
        if self.schedule.evaluate:
            self._evaluate()
        self._checkpoint()
        r, b = self.result, self.backend
        r.wall_s = self._wall()
        r.env_steps, r.updates, r.update_s = self.env_steps, b.updates, b.update_s
        r.episodes, r.successes = int(self.counters["episodes"]), int(self.counters["successes"])
        r.faults, r.learner_restarts, r.dropped_batches = list(b.faults), list(b.restarts), b.dropped
        r.faults += self.collector.faults
        r.actor_restarts, r.lost_env_steps = self.collector.restarts, self.collector.lost_env_steps
        return r

    def close(self) -> None:
        self.log.close()
        self.collector.close()
        if self.env is not None:
            self.env.close()
        if self.eval_env is not None:
            self.eval_env.close()
