"""The HIL run: an actor (env, person, policy inference, dataset) and a learner (updates), in one process
or two.

A real robot runs at a fixed control rate and cannot wait for gradient updates, so with ``cfg.split`` the
learner runs in its own process: the actor streams transition batches to it over a bounded
``multiprocessing`` queue and the learner publishes actor weights every ``publish_every`` updates on
another. Without ``split`` the same :class:`~robolearn.hil.workers.HILActor` and
:class:`~robolearn.hil.workers.HILLearner` alternate in one process (tests, benchmarks; exact UTD).

Faults: the actor never blocks on the learner (``put_nowait``; a full queue drops the batch and counts
it). When the learner process dies (crash, SIGKILL) the actor reports it in ``HILResult.faults`` and on
the status line, keeps acting on the last weights it received, and (``restart_learner``) starts a new
learner on fresh queues, which resumes from the latest checkpoint of the run.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robolearn.core.config import make_run_dir, save_config
from robolearn.hil.config import HILConfig
from robolearn.hil.intervention import InterventionVecEnv, SuccessLabeler
from robolearn.hil.sim_human import Intervener
from robolearn.hil.sources import HILSources
from robolearn.hil.workers import EpisodeRecorder, HILActor, HILLearner, make_env, make_residual_env
from robolearn.refine.evaluation import EVAL_SEED, evaluate_wrapper
from robolearn.refine.saved import save_refined
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
from robolearn.rl.replay import Batch


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
    """Policy alone (no person): env_steps, success_rate, mean_return, mean_length."""
    faults: list[str] = field(default_factory=list)
    learner_restarts: list[dict[str, int]] = field(default_factory=list)
    """Per restart: env_steps when the fault was seen, env_steps when the new learner answered, and the
    update count it restored."""
    dropped_batches: int = 0
    wall_s: float = 0.0


class InProcessBackend:
    """The learner in the actor's process: owed updates run between actor steps."""

    def __init__(self, cfg: HILConfig, run: Path, env: InterventionVecEnv) -> None:
        self.cfg, self.run = cfg, run
        self.learner = HILLearner(cfg, env.obs_shapes, env.action_dim, env.critic_action_fn)
        self.faults: list[str] = []
        self.restarts: list[dict[str, int]] = []
        self.dropped = 0
        self._published = self._ckpt = 0

    def start(self, actor: HILActor) -> None:
        self.learner.restore(self.run)
        self._published = self._ckpt = self.learner.updates
        actor.load_weights(self.learner.weights(), self.learner.updates)

    def send(self, batch: Batch, env_steps: int) -> None:
        self.learner.add(batch, env_steps)

    def poll(self, actor: HILActor) -> None:
        self.learner.train()
        u = self.learner.updates
        if u - self._published >= self.cfg.publish_every:
            actor.load_weights(self.learner.weights(), u)
            self._published = u
        if u - self._ckpt >= self.cfg.checkpoint_every:
            self.learner.checkpoint(self.run)
            self._ckpt = u

    def stop(self, actor: HILActor) -> int:
        self.learner.checkpoint(self.run)
        actor.load_weights(self.learner.weights(), self.learner.updates)
        return self.learner.updates


def learner_main(cfg: HILConfig, run_dir: str, obs_shapes: dict[str, tuple[int, ...]], action_dim: int,
                 transitions: Any, weights: Any, status: Any, stop: Any) -> None:
    """The learner process: restore, publish, then consume transitions and update until ``stop`` is set."""
    import torch

    torch.set_num_threads(1)
    try:
        learner = HILLearner(cfg, obs_shapes, action_dim)
        restored = learner.restore(run_dir)
        published = ckpt = learner.updates
        _publish(weights, learner)
        status.put({"kind": "hello", "updates": learner.updates, "restored": restored})
        while not stop.is_set():
            try:
                for _ in range(64):
                    batch, env_steps = transitions.get(timeout=0.02)
                    learner.add(batch, env_steps)
            except queue.Empty:
                pass
            learner.train(max_updates=cfg.publish_every)
            if learner.updates - published >= cfg.publish_every:
                _publish(weights, learner)
                published = learner.updates
                status.put({"kind": "stats", "updates": learner.updates, **learner.last_stats})
            if learner.updates - ckpt >= cfg.checkpoint_every:
                learner.checkpoint(run_dir)
                ckpt = learner.updates
        learner.checkpoint(run_dir)
        _publish(weights, learner, block=True)
        status.put({"kind": "done", "updates": learner.updates})
    except Exception:  # reported to the actor, which keeps acting
        status.put({"kind": "fault", "error": traceback.format_exc()})
        raise


def _publish(weights: Any, learner: HILLearner, block: bool = False) -> None:
    msg = {"version": learner.updates, "weights": learner.weights()}
    try:
        weights.put(msg, timeout=5.0) if block else weights.put_nowait(msg)
    except queue.Full:  # the actor has not taken the previous ones yet; it will get a later version
        pass


class ProcessBackend:
    """The learner in its own (spawned) process; see the module docstring for the fault handling."""

    def __init__(self, cfg: HILConfig, run: Path, env: InterventionVecEnv, restart: bool = True) -> None:
        self.cfg, self.run, self.restart = cfg, run, restart
        self.shapes, self.action_dim = dict(env.obs_shapes), env.action_dim
        self.ctx = mp.get_context("spawn")
        self.faults: list[str] = []
        self.restarts: list[dict[str, int]] = []
        self.dropped = 0
        self.updates = 0
        self.proc: Any = None
        self._down_at: int | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def _spawn(self) -> None:
        self.tq, self.wq, self.sq = self.ctx.Queue(maxsize=512), self.ctx.Queue(maxsize=4), self.ctx.Queue()
        self.stop_event = self.ctx.Event()
        self.proc = self.ctx.Process(target=learner_main, name="robolearn-hil-learner", daemon=True, args=(
            self.cfg, str(self.run), self.shapes, self.action_dim, self.tq, self.wq, self.sq, self.stop_event))
        self.proc.start()

    def start(self, actor: HILActor) -> None:
        self._spawn()
        deadline = time.monotonic() + 120.0
        while actor.version < 0:  # the first weights: the restored (or initial) actor
            self.poll(actor)
            if time.monotonic() > deadline or (not self.proc.is_alive() and not self.restart):
                raise RuntimeError(f"the learner process did not start: {self.faults or 'no answer in 120 s'}")
            time.sleep(0.02)

    def send(self, batch: Batch, env_steps: int) -> None:
        try:
            self.tq.put_nowait((batch, env_steps))
        except queue.Full:
            self.dropped += 1

    def poll(self, actor: HILActor) -> None:
        latest = None
        while True:
            try:
                latest = self.wq.get_nowait()
            except queue.Empty:
                break
        if latest is not None:
            actor.load_weights(latest["weights"], latest["version"])
        self._read_status(actor)
        if not self._stopping and self._down_at is None and not self.proc.is_alive():
            self._fault(actor, f"learner process exited with code {self.proc.exitcode} at env step "
                               f"{actor.env_steps}; acting on weights v{actor.version}")

    def _read_status(self, actor: HILActor) -> None:
        while True:
            try:
                msg = self.sq.get_nowait()
            except queue.Empty:
                return
            self.updates = int(msg.get("updates", self.updates))
            if msg["kind"] == "fault":
                self.faults.append(f"learner raised at env step {actor.env_steps}:\n{msg['error']}")
            elif msg["kind"] == "hello" and self._down_at is not None:
                self.restarts.append({"fault_env_steps": self._down_at, "resumed_env_steps": actor.env_steps,
                                      "restored_updates": int(msg["updates"])})
                self._down_at = None

    def _fault(self, actor: HILActor, message: str) -> None:
        self.faults.append(message)
        for q in (self.tq, self.wq, self.sq):  # a killed process may hold their locks: never reuse them
            q.cancel_join_thread()
        if self.restart:
            self._down_at = actor.env_steps
            self._spawn()

    def stop(self, actor: HILActor) -> int:
        self._stopping = True
        if self.proc.is_alive():
            self.stop_event.set()
            deadline = time.monotonic() + 60.0
            while self.proc.is_alive() and time.monotonic() < deadline:
                self.poll(actor)
                time.sleep(0.05)
            self.poll(actor)
        self.proc.join(timeout=10.0)
        if self.proc.is_alive():
            self.proc.kill()
        for q in (self.tq, self.wq, self.sq):
            q.cancel_join_thread()
        return self.updates


def _resumed_env_steps(run: Path) -> int:
    path = latest_checkpoint(run)
    return 0 if path is None else int(load_checkpoint(path, {})["counters"]["env_steps"])


def _open_recorder(cfg: HILConfig, sources: HILSources, run: Path, env: InterventionVecEnv, intervener_name: str
                   ) -> Any:
    from robolearn.datasets.writer import EpisodeWriter

    info = sources.dataset_info({"source": "hil", "mode": cfg.mode, "base": cfg.base, "device": cfg.device})
    writer = EpisodeWriter(run / "dataset", info)
    return writer, EpisodeRecorder(writer, env.num_envs, {"source": "hil", "mode": cfg.mode,
                                                           "intervener": intervener_name})


def run_hil(cfg: HILConfig, sources: HILSources, run_dir: str | Path | None = None, resume: bool = False,
            intervener: Intervener | None = None, labeler: SuccessLabeler | None = None,
            status: Callable[[str], None] | None = None, on_step: Callable[[HILActor, Any], None] | None = None,
            restart_learner: bool = True, log_every: int = 200,
            should_stop: Callable[[], bool] | None = None) -> HILResult:
    """Run human-in-the-loop refinement of ``cfg.base`` for ``cfg.total_env_steps`` env steps on the envs and
    policies of ``sources``.

    ``intervener`` defaults to the configured simulated human; ``labeler`` ends episodes on a person's
    success label (one env). ``status`` receives the live status line; ``on_step(actor, backend)`` is
    called after every actor step (tests use it to kill the learner). ``resume`` continues from the run's
    latest checkpoint (the learner's state and buffers; the env-step count it had received).
    """
    cfg.validate()
    run = make_run_dir(run_dir, cfg.out_dir, cfg.run_name, f"hil-{cfg.mode}-{cfg.env_id.split('/')[-1]}")
    save_config(cfg, run / "config.yaml")
    if not resume and latest_checkpoint(run) is not None:
        raise FileExistsError(f"{run} already holds a HIL run; pass resume=True (--resume) or use a new run dir")
    env = make_env(cfg, sources, intervener, labeler)
    writer, recorder = (_open_recorder(cfg, sources, run, env, env.intervener.name) if cfg.dataset
                        else (None, None))
    actor = HILActor(cfg, env, recorder)
    backend: Any = ProcessBackend(cfg, run, env, restart_learner) if cfg.split else InProcessBackend(cfg, run, env)
    result = HILResult(str(run))
    actor.env_steps = _resumed_env_steps(run) if resume else 0
    eval_env = (make_residual_env(cfg, sources, min(8, cfg.eval_episodes), cfg.seed + 1) if cfg.eval_every > 0
                else None)
    t0, next_log, next_eval, last_status = time.perf_counter(), actor.env_steps, actor.env_steps, 0.0
    period = 1.0 / sources.control_hz if cfg.realtime else 0.0
    try:
        backend.start(actor)
        actor.reset(seed=cfg.seed + actor.env_steps)
        while actor.env_steps < cfg.total_env_steps and not (should_stop and should_stop()):
            tick = time.monotonic()
            if eval_env is not None and actor.env_steps >= next_eval:
                _evaluate(eval_env, actor, cfg, result)
                next_eval = actor.env_steps + cfg.eval_every
            batch = actor.step()
            if batch is not None:
                backend.send(batch, actor.env_steps)
            backend.poll(actor)
            if on_step is not None:
                on_step(actor, backend)
            if actor.env_steps >= next_log:
                result.curve.append(_curve_row(actor, backend))
                next_log = actor.env_steps + log_every
            if status is not None and (time.monotonic() - last_status > 0.5 or cfg.realtime):
                status(actor.status() + (f"  | LEARNER FAULT x{len(backend.faults)}" if backend.faults else ""))
                last_status = time.monotonic()
            if cfg.realtime:
                time.sleep(max(0.0, period - (time.monotonic() - tick)))
        tail = actor.builder.flush()
        if tail is not None:
            backend.send(tail, actor.env_steps)
    finally:
        result.updates = backend.stop(actor)
        if writer is not None:
            writer.close()
        env.close()
    if eval_env is not None:
        _evaluate(eval_env, actor, cfg, result)
        eval_env.close()
    result.curve.append(_curve_row(actor, backend))
    _finish(cfg, run, actor, backend, result, t0)
    return result


def _curve_row(actor: HILActor, backend: Any) -> dict[str, float]:
    updates = backend.learner.updates if hasattr(backend, "learner") else backend.updates
    return {"env_steps": actor.env_steps, "success_rate": actor.success_rate,
            "intervention_rate": actor.intervention_rate, "takeovers": actor.takeovers,
            "intervention_steps": actor.intervention_steps, "episodes": actor.episodes, "updates": updates,
            "weights_version": actor.version}


def _evaluate(eval_env: Any, actor: HILActor, cfg: HILConfig, result: HILResult) -> None:
    scores = evaluate_wrapper(eval_env, actor, cfg.eval_episodes, seed=EVAL_SEED)
    result.evals.append({"env_steps": actor.env_steps, **scores, "weights_version": actor.version})


def _finish(cfg: HILConfig, run: Path, actor: HILActor, backend: Any, result: HILResult, t0: float) -> None:
    import json

    result.env_steps, result.episodes, result.successes = actor.env_steps, actor.episodes, actor.successes
    result.intervention_steps, result.takeovers = actor.intervention_steps, actor.takeovers
    result.faults, result.learner_restarts = list(backend.faults), list(backend.restarts)
    result.dropped_batches, result.wall_s = backend.dropped, time.perf_counter() - t0
    save_refined(run / "policy", "residual", cfg.base, cfg.env_id, actor.net, actor.env.obs_shapes,
                 cfg.learner.hidden, cfg.residual.to_dict())
    summary = {k: v for k, v in vars(result).items()}
    (run / "hil_result.json").write_text(json.dumps(summary, indent=1, default=float))

