"""The policy node's inference worker and action queue, without ROS (unit-testable).

A chunked policy answers one observation with ``Ta`` actions. The node publishes one queued action per
control period, triggered by the observation of that period, so the observation-to-command path is a
queue pop (no inference on it). The worker thread computes chunks off that path: when only ``lead``
actions of the current chunk remain unexecuted it computes the next chunk from the newest observation,
so the queue does not run dry while the policy thinks. With ``lead=-1`` (auto) the lead follows the
measured inference time: enough control periods to cover 1.25x the 90th percentile of the last 50
chunks (at most the chunk length - 1) and the slowest of them (at most half the chunk), and none when the
former fits in half a period: the chunk's first command
then waits for inference but still arrives within its period, and the chunk is planned from the newest
observation (a one-step-older plan cost the QuadHover diffusion base most of its success: 3/12 against
9/12 in simulation). A chunk computed from the observation of step
``t`` starts with the action for step ``t``; the actions that went out from the old queue since that
observation arrived are dropped from its head, so every step gets exactly one action. With ``reserve``, a
policy that predicts past the ``Ta`` actions it executes (BC and diffusion predict ``Tp``; see
``predict_ahead``) leaves those predictions in a reserve that is popped when its next chunk is late (with a
lead above 0: it should have been in before this step), so a slow chunk costs the robot a step of an older
plan instead of a missed period. With lead 0 the chunk boundary waits for the chunk planned from the newest
observation, as intended.

A policy whose chunks are one action long (the residual: base chunk + per-step correction) is computed on the
command path whatever the lead; :meth:`PolicyRunner.act_now` lets the thread that publishes compute it, saving
the hand-off to the worker and back. With ``prepare=True``, such a policy's ``prepare(obs)`` is called after
each action is queued, so the work its next ``act`` would do first (the base's next chunk) happens between
commands; that plans the base one step early, a trade-off some tasks do not tolerate (see policy_node).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np


class PolicyRunner:
    """The worker thread and the action queue.

    Args:
        policy: a :class:`~robolearn.core.protocols.Policy`; ``act`` gets a batch of one.
        replan_every: actions executed per chunk before replanning (``Ta``); 0: the whole chunk.
        on_chunk: called from the worker thread when a fresh chunk is queued.
        lead: replan when this many actions of the chunk are still to be executed (0: when it is used up;
            -1: from the measured inference time, which needs ``period``).
        period: control period, s (for ``lead=-1``).
        prepare: call the policy's ``prepare`` (when it has one) after each chunk (off by default: the
            residual's ``prepare`` plans its base one step early, which QuadHover did not tolerate).
        reserve: keep a chunk's actions beyond ``replan_every`` (a policy that predicts ahead returns its whole
            horizon) and pop them when the queue runs dry before the next chunk is in, rather than nothing
            (only with a lead above 0; with none the boundary waits for the fresh chunk).
    """

    def __init__(self, policy: Any, replan_every: int = 0, on_chunk: Callable[[], None] | None = None,
                 lead: int = 0, period: float | None = None, prepare: bool = False, reserve: bool = False):
        if replan_every < 0:
            raise ValueError(f"replan_every must be >= 0, got {replan_every}")
        if lead < -1:
            raise ValueError(f"lead must be >= 0, or -1 (auto), got {lead}")
        if lead == -1 and not (period and period > 0):
            raise ValueError("lead=-1 (auto) needs the control period")
        self.policy, self.replan_every, self.on_chunk, self.lead = policy, int(replan_every), on_chunk, int(lead)
        self.period = period
        self.prepare = bool(prepare) and hasattr(policy, "prepare")
        self._policy_lock = threading.Lock()
        """Serializes policy calls between the worker and :meth:`act_now`'s caller."""
        self._prepare_next: dict[str, np.ndarray] | None = None
        """A batch :meth:`act_now` acted on, whose ``prepare`` the worker runs."""
        self._auto_lead = 1
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._latest: tuple[dict[str, np.ndarray], dict[str, float], int, bool] | None = None
        self._queue: deque[np.ndarray] = deque()
        self.reserve = bool(reserve)
        self._reserve: deque[np.ndarray] = deque()
        """The current chunk's predictions past ``replan_every`` (with ``reserve``)."""
        self.reserve_used = 0
        """Actions popped from the reserve (the next chunk was late)."""
        self._executed = 0
        """Actions of the current chunk popped so far."""
        self._chunk_len = 0
        self._pops = 0
        """Actions popped since start (all chunks)."""
        self._pending = False
        """A chunk is being computed (no second one is started meanwhile)."""
        self._episode: float | None = None
        self._worker_episode: float | None = None
        self.infer_ms: deque[float] = deque(maxlen=2000)
        self.prepare_ms: deque[float] = deque(maxlen=2000)
        """Durations of the policy's ``prepare`` calls (off the command path), ms."""
        self.handled = 0
        """Observations the worker has finished with (observed, or a chunk computed from)."""
        self.dropped = 0
        """Observations the worker never saw (a newer one replaced them while it was busy)."""
        self.error: str | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="policy-worker", daemon=True)
        self._thread.start()

    @property
    def worker_id(self) -> int | None:
        """Native thread id of the worker (to keep it off a real-time scheduling class)."""
        return self._thread.native_id

    def push(self, obs: dict[str, np.ndarray], meta: dict[str, float], wake: bool = True) -> None:
        """Hand the newest observation to the worker. Call it *before* popping that step's action.

        A new ``meta["episode"]`` empties the queue at once (no action of the last episode goes out).
        ``wake=False`` leaves the worker asleep until :meth:`wake`, so that the caller can publish this
        step's command before inference competes with it for the interpreter.
        """
        with self._lock:
            if meta["episode"] != self._episode:
                self._episode = meta["episode"]
                self._queue.clear()
                self._reserve.clear()
                self._executed = self._chunk_len = 0
            if self._latest is not None:
                self.dropped += 1
            self._latest = (obs, meta, self._pops, self._due())
        if wake:
            self._event.set()

    def wake(self) -> None:
        """Let the worker take the newest observation (after ``push(..., wake=False)``)."""
        self._event.set()

    def pop(self) -> np.ndarray | None:
        """The next queued action ``(Da,)`` (from the reserve when the queue has run dry), or None."""
        with self._lock:
            if self._queue:
                self._executed += 1
                self._pops += 1
                return self._queue.popleft()
            if self._reserve and self.current_lead() > 0:  # late: it was due before this step (with lead 0 the
                self.reserve_used += 1                     # boundary waits for a chunk from this observation)
                self._pops += 1
                return self._reserve.popleft()
            return None

    def clear(self) -> None:
        """Drop the queued actions, the reserve and the waiting observation (the node went blind: what was
        planned from older images is not sent later); the next observation starts a fresh chunk."""
        with self._lock:
            self._queue.clear()
            self._reserve.clear()
            self._latest = None
            self._executed = self._chunk_len = 0

    def stop(self) -> None:
        self._stop = True
        self._event.set()
        self._thread.join(timeout=2.0)

    def current_lead(self) -> int:
        """The lead in actions now: ``lead``, or for auto the periods that 1.25x the p90 inference spans (0 when
        that is under half a period); at most the current chunk's length - 1 (the next chunk starts once the
        current one's first action has gone out, at the earliest)."""
        lead = self.lead if self.lead >= 0 else self._auto_lead
        return min(lead, self._chunk_len - 1) if self._chunk_len > 0 else lead

    def _update_lead(self, chunk_len: int) -> None:
        """Recompute the auto lead from the last 50 inference times (worker thread, after each chunk of
        ``chunk_len`` actions): none when 1.25x their p90 fits in half a period; else enough periods for that,
        and for the slowest of them (one slow chunk, a hiccup of the machine, would otherwise empty the queue)
        as long as that lead is at most half the chunk: a larger one replans so often that inference load
        feeds on itself."""
        if self.lead < 0:
            recent = np.asarray(list(self.infer_ms)[-50:]) / (1e3 * self.period)  # in periods
            typical = 1.25 * float(np.percentile(recent, 90))
            cover = min(math.ceil(float(recent.max())), chunk_len // 2)
            self._auto_lead = 0 if typical <= 0.5 else max(math.ceil(typical), cover)

    def _due(self) -> bool:
        """Whether the observation arriving now should start a new chunk (lock held)."""
        lead = self.current_lead()  # capped at the chunk length - 1: a one-action chunk is always computed fresh
        return not self._pending and (not self._queue or self._executed >= self._chunk_len - lead)

    def _run(self) -> None:
        while not self._stop:
            if not self._event.wait(0.1):
                continue
            self._event.clear()
            with self._lock:
                after_sync, self._prepare_next = self._prepare_next, None
            if after_sync is not None:
                self._prepare(after_sync)
            with self._lock:
                item, self._latest = self._latest, None
                if item is not None and item[3]:
                    self._pending = True
            if item is None:
                continue
            acted = self._serve(item)
            if acted is not None and self.prepare:
                self._prepare(acted)

    def act_now(self) -> bool:
        """Answer the newest observation in the calling thread when the policy's chunks are one action long.

        Such a policy (the residual) computes every command on the command path anyway; answering in the
        thread that publishes saves the hand-off to the worker and back (two thread wake-ups, and an executor
        round for the ``on_chunk`` trigger). Its ``prepare`` still runs in the worker. Returns True when an
        action was queued; False (nothing done) for chunked policies, before the first chunk, when nothing is
        due or the worker is busy with it.
        """
        with self._lock:
            if self._chunk_len != 1 or self._latest is None or not self._latest[3] or self._pending:
                return False
            item, self._latest = self._latest, None
            self._pending = True
        acted = self._serve(item, notify=False)
        if acted is not None and self.prepare:
            with self._lock:
                self._prepare_next = acted
            self._event.set()
        return acted is not None

    def _serve(self, item: tuple[dict[str, np.ndarray], dict[str, float], int, bool],
               notify: bool = True) -> dict[str, np.ndarray] | None:
        """:meth:`_handle` one taken observation, errors reported, the pending flag cleared."""
        try:
            with self._policy_lock:
                return self._handle(*item, notify=notify)
        except Exception as err:  # noqa: BLE001  (reported on the timing topic and the log)
            self.error = f"{type(err).__name__}: {err}"
            return None
        finally:
            with self._lock:
                self._pending = False
                self.handled += 1

    def _prepare(self, batch: dict[str, np.ndarray]) -> None:
        """The policy's between-commands work after acting on ``batch`` (a new observation waits for it)."""
        t0 = time.perf_counter()
        try:
            with self._policy_lock:
                self.policy.prepare(batch)
        except Exception as err:  # noqa: BLE001
            self.error = f"{type(err).__name__}: {err}"
        self.prepare_ms.append(1e3 * (time.perf_counter() - t0))

    def _handle(self, obs: dict[str, np.ndarray], meta: dict[str, float], pops: int, due: bool,
                notify: bool = True) -> dict[str, np.ndarray] | None:
        """Observe or act on one observation; returns the batch it acted on (None: observed only); ``notify``:
        call ``on_chunk`` when a chunk is queued."""
        if meta["episode"] != self._worker_episode:
            self.policy.reset()
            self._worker_episode = meta["episode"]
            due = True
        batch = {k: v[None] for k, v in obs.items()}
        if not due:
            if hasattr(self.policy, "observe"):
                self.policy.observe(batch)
            return None
        t0 = time.perf_counter()
        chunk = np.asarray(self.policy.act(batch))[0]
        self.infer_ms.append(1e3 * (time.perf_counter() - t0))
        if chunk.ndim != 2 or not len(chunk):
            raise ValueError(f"policy returned a chunk of shape {chunk.shape}, expected (Ta, Da)")
        n = min(self.replan_every, len(chunk)) if self.replan_every else len(chunk)
        self._update_lead(n)
        with self._lock:
            if meta["episode"] != self._episode:
                return None  # a newer episode started while this chunk was computed
            sent = self._pops - pops  # steps since this observation already answered by the old queue
            self._queue = deque(chunk[sent:n])
            self._reserve = deque(chunk[max(sent, n):] if self.reserve else ())
            self._executed, self._chunk_len = sent, n
        if notify and self.on_chunk is not None:
            self.on_chunk()
        return batch


class LoopStats:
    """Command-period and latency statistics (ms) over the last ``window`` commands."""

    def __init__(self, period: float, window: int = 2000):
        self.period = period
        self.intervals: deque[float] = deque(maxlen=window)
        self.latency: deque[float] = deque(maxlen=window)
        self.missed = 0
        self.missed_starved = 0
        """Of ``missed``, periods in which an observation found the action queue empty (inference late)."""
        self.published = 0
        self.sources: Counter[str] = Counter()
        """Commands by what triggered them."""
        self.last: float | None = None
        """perf_counter time (s) of the latest command."""

    def published_at(self, t: float, obs_time: float | None, source: str = "observation") -> None:
        """A command went out at ``t`` (perf_counter s) for the observation that arrived at ``obs_time``,
        triggered by ``source`` (observation, chunk or timer)."""
        self.sources[source] += 1
        if self.last is not None:
            self.intervals.append(1e3 * (t - self.last))
        if obs_time is not None:
            self.latency.append(1e3 * (t - obs_time))
        self.last = t
        self.published += 1

    def count_missed(self, periods: int, starved: bool) -> None:
        """``periods`` control periods went by without a command; ``starved``: the queue was empty in them."""
        self.missed += periods
        self.missed_starved += periods if starved else 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"published": self.published, "by_source": dict(self.sources),
                               "missed_periods": self.missed, "missed_starved": self.missed_starved,
                               "period_ms": 1e3 * self.period}
        if self.intervals:
            iv = np.asarray(self.intervals)
            out |= {"interval_mean_ms": float(iv.mean()), "interval_std_ms": float(iv.std()),
                    "interval_max_ms": float(iv.max())}
        if self.latency:
            lat = np.asarray(self.latency)
            out |= {"latency_p50_ms": float(np.percentile(lat, 50)), "latency_p99_ms": float(np.percentile(lat, 99))}
        return out
