"""Where the off-policy loop's learner side runs: the runner option ``sync`` or ``process``.

* :class:`SyncBackend` (``sync``): the :class:`~robolearn.refine.learner_side.LearnerSide` in the loop's
  process; the owed updates run between collect steps (exact UTD, deterministic for a seed).
* :class:`ProcessBackend` (``process``): the learner side in a spawned process, so that the collector keeps
  a robot's control rate while it updates. The collector streams transition batches over a bounded
  ``multiprocessing`` queue and the learner publishes actor weights every ``publish_every`` updates on another;
  it checkpoints itself every ``checkpoint_every`` updates.

Faults (``process``): the collector never blocks on the learner (``put_nowait``; a full queue drops the batch
and counts it). When the learner process dies (crash, SIGKILL) the fault is reported in ``faults``, the
collector keeps acting on the last weights it received, and (``restart``) a new learner starts on fresh
queues, resuming from the run's latest checkpoint.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from robolearn.refine.acting import Acting
from robolearn.refine.learner_side import LearnerSide
from robolearn.rl.replay import Batch

LearnerFactory = Callable[[], LearnerSide]
"""Builds the learner side; picklable (a ``functools.partial`` of a module-level function) for ``process``."""


class Backend(Protocol):
    """What the loop needs from where its learner side runs."""

    side: LearnerSide | None
    """The learner side when it is in this process (the loop checkpoints and restores it); None: elsewhere."""
    faults: list[str]
    restarts: list[dict[str, int]]
    dropped: int
    update_s: float

    @property
    def updates(self) -> int: ...

    def start(self, acting: Acting) -> None: ...

    def send(self, batch: Batch | None, units: int, env_steps: int, train: bool = True
             ) -> tuple[dict[str, float], int]: ...

    def poll(self, acting: Acting, env_steps: int) -> None: ...

    def stop(self, acting: Acting) -> None: ...


class SyncBackend:
    """The learner side in the loop's process."""

    def __init__(self, side: LearnerSide, publish_every: int = 1) -> None:
        self.side, self.publish_every = side, publish_every
        self.faults: list[str] = []
        self.restarts: list[dict[str, int]] = []
        self.dropped = 0
        self.update_s = 0.0
        self._published = 0

    @property
    def updates(self) -> int:
        return self.side.updates

    def start(self, acting: Acting) -> None:
        self._published = self.side.updates
        if acting.takes_weights:
            acting.load_weights(self.side.weights(), self.side.updates)

    def send(self, batch: Batch | None, units: int, env_steps: int, train: bool = True) -> tuple[dict[str, float], int]:
        """Store ``batch``, account the step and run the owed updates; (their last statistics, how many ran)."""
        if batch is not None:
            self.side.add(batch)
        if not self.side.accrue(units, env_steps, batch is not None) or not train:
            return {}, 0
        t0 = time.perf_counter()
        ran = self.side.train()
        self.update_s += time.perf_counter() - t0
        return (self.side.last_stats if ran else {}), ran

    def poll(self, acting: Acting, env_steps: int) -> None:
        """Publish the weights to ``acting`` every ``publish_every`` updates."""
        if acting.takes_weights and self.side.updates - self._published >= self.publish_every:
            acting.load_weights(self.side.weights(), self.side.updates)
            self._published = self.side.updates

    def stop(self, acting: Acting) -> None:
        if acting.takes_weights:
            acting.load_weights(self.side.weights(), self.side.updates)


def learner_main(factory: LearnerFactory, run_dir: str, publish_every: int, checkpoint_every: int,
                 transitions: Any, weights: Any, status: Any, stop: Any) -> None:
    """The learner process: restore, publish, then consume transitions and update until ``stop`` is set."""
    import torch

    torch.set_num_threads(1)
    try:
        side = factory()
        restored = side.restore(run_dir) is not None
        published = ckpt = side.updates
        _publish(weights, side)
        status.put({"kind": "hello", "updates": side.updates, "restored": restored})
        while not stop.is_set():
            try:
                for _ in range(64):
                    batch, env_steps = transitions.get(timeout=0.02)
                    side.add(batch)
                    side.accrue(0, env_steps, arrived=True)
            except queue.Empty:
                pass
            side.train(max_updates=publish_every)
            if side.updates - published >= publish_every:
                _publish(weights, side)
                published = side.updates
                status.put({"kind": "stats", "updates": side.updates, **side.last_stats})
            if side.updates - ckpt >= checkpoint_every:
                _checkpoint(side, run_dir)
                ckpt = side.updates
        _checkpoint(side, run_dir)
        _publish(weights, side, block=True)
        status.put({"kind": "done", "updates": side.updates})
    except Exception:  # reported to the collector, which keeps acting
        status.put({"kind": "fault", "error": traceback.format_exc()})
        raise


def _checkpoint(side: LearnerSide, run_dir: str) -> None:
    side.checkpoint(run_dir, side.updates, {"counters": {"env_steps": side.counters["env_steps"]}})


def _publish(weights: Any, side: LearnerSide, block: bool = False) -> None:
    msg = {"version": side.updates, "weights": side.weights()}
    try:
        weights.put(msg, timeout=5.0) if block else weights.put_nowait(msg)
    except queue.Full:  # the collector has not taken the previous ones yet; it will get a later version
        pass


class ProcessBackend:
    """The learner side in its own (spawned) process; see the module docstring for the fault handling."""

    side = None

    def __init__(self, factory: LearnerFactory, run: Path, publish_every: int, checkpoint_every: int,
                 restart: bool = True) -> None:
        self.factory, self.run, self.restart = factory, run, restart
        self.publish_every, self.checkpoint_every = publish_every, checkpoint_every
        self.ctx = mp.get_context("spawn")
        self.faults: list[str] = []
        self.restarts: list[dict[str, int]] = []
        self.dropped = 0
        self.update_s = 0.0
        self.updates = 0
        self.proc: Any = None
        self._down_at: int | None = None
        self._stopping = False
        self._env_steps = 0

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def _spawn(self) -> None:
        self.tq, self.wq, self.sq = self.ctx.Queue(maxsize=512), self.ctx.Queue(maxsize=4), self.ctx.Queue()
        self.stop_event = self.ctx.Event()
        self.proc = self.ctx.Process(target=learner_main, name="robolearn-learner", daemon=True, args=(
            self.factory, str(self.run), self.publish_every, self.checkpoint_every, self.tq, self.wq, self.sq,
            self.stop_event))
        self.proc.start()

    def start(self, acting: Acting) -> None:
        self._spawn()
        deadline = time.monotonic() + 120.0
        while acting.version < 0:  # the first weights: the restored (or initial) actor
            self.poll(acting, 0)
            if time.monotonic() > deadline or (not self.proc.is_alive() and not self.restart):
                raise RuntimeError(f"the learner process did not start: {self.faults or 'no answer in 120 s'}")
            time.sleep(0.02)

    def send(self, batch: Batch | None, units: int, env_steps: int, train: bool = True) -> tuple[dict[str, float], int]:
        """Queue ``batch`` for the learner (the updates run there)."""
        if batch is not None:
            try:
                self.tq.put_nowait((batch, env_steps))
            except queue.Full:
                self.dropped += 1
        return {}, 0

    def poll(self, acting: Acting, env_steps: int) -> None:
        """Take the newest published weights, read the learner's status, notice a dead learner."""
        self._env_steps = env_steps
        latest = None
        while True:
            try:
                latest = self.wq.get_nowait()
            except queue.Empty:
                break
        if latest is not None:
            acting.load_weights(latest["weights"], latest["version"])
        self._read_status()
        if not self._stopping and self._down_at is None and not self.proc.is_alive():
            self._fault(f"learner process exited with code {self.proc.exitcode} at env step {env_steps}; "
                        f"acting on weights v{acting.version}")

    def _read_status(self) -> None:
        while True:
            try:
                msg = self.sq.get_nowait()
            except queue.Empty:
                return
            self.updates = int(msg.get("updates", self.updates))
            if msg["kind"] == "fault":
                self.faults.append(f"learner raised at env step {self._env_steps}:\n{msg['error']}")
            elif msg["kind"] == "hello" and self._down_at is not None:
                self.restarts.append({"fault_env_steps": self._down_at, "resumed_env_steps": self._env_steps,
                                      "restored_updates": int(msg["updates"])})
                self._down_at = None

    def _fault(self, message: str) -> None:
        self.faults.append(message)
        for q in (self.tq, self.wq, self.sq):  # a killed process may hold their locks: never reuse them
            q.cancel_join_thread()
        if self.restart:
            self._down_at = self._env_steps
            self._spawn()

    def stop(self, acting: Acting) -> None:
        self._stopping = True
        if self.proc.is_alive():
            self.stop_event.set()
            deadline = time.monotonic() + 60.0
            while self.proc.is_alive() and time.monotonic() < deadline:
                self.poll(acting, self._env_steps)
                time.sleep(0.05)
            self.poll(acting, self._env_steps)
        self.proc.join(timeout=10.0)
        if self.proc.is_alive():
            self.proc.kill()
        for q in (self.tq, self.wq, self.sq):
            q.cancel_join_thread()
