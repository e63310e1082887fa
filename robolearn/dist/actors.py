"""Collection by Ray actors for the off-policy loop (runner ``ray``): the loop's learner keeps its process, its
replay, its update-to-data accounting and its checkpoints; ``actors`` Ray actors step the envs.

Each actor (:class:`CollectorActor`: one CPU, one torch thread) builds its own wrapper env, sink and acting
snapshot from the run's config (:func:`robolearn.wiring.refine_actor_parts`: no live env or torch module
crosses the wire), steps ``chunk`` wrapper steps per call on the actor weights it was last sent, and returns the steps
(:class:`~robolearn.refine.collectors.Collected`, numpy only). The learner's side (:class:`RayCollector`) keeps
one call in flight per actor and hands the finished steps to the loop, which accounts them as its own
(``updates_per_env_step`` counts the env steps of all actors); every ``weight_sync_every`` updates it puts the
actor's state dict (numpy arrays) in the object store once, and each actor's next call carries the reference.
Actors ask for one CPU each and are spread over the cluster's nodes (``SPREAD``).

Faults. An actor whose process dies is restarted by Ray (``max_restarts``); the call it had in flight is lost
and its env steps are counted (``lost_env_steps``, a line in ``faults``, ``faults/*`` in the run's scalar
log); its next call resets its envs and carries the weights again; the learner carries on with the other
actors meanwhile. The actors are detached and named after the run directory: when the learner process dies
they wait, and a learner restarted on the same run directory (``--resume``) takes them over and continues
from its checkpoint. A run that ends, or fails with an exception, kills its actors.

ray is imported only inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from robolearn.dist.cluster import connect, node_id
from robolearn.refine.acting import Acting
from robolearn.refine.collectors import Collected, Sink, step_wrapper
from robolearn.rl.replay import Batch

NAMESPACE = "robolearn"
"""The Ray namespace of the collectors' named actors."""
START_TIMEOUT_S = 180.0
"""How long the actors may take to start (build their envs and the base) before the run gives up."""

Parts = tuple[Any, Sink, Acting]
"""An actor's wrapper env (``B`` envs), its sink and its acting snapshot."""
PartsBuilder = Callable[[int], Parts]
"""``actor index -> parts``; picklable (a ``functools.partial`` of a module-level function and a config)."""


class CollectorActor:
    """The body of one Ray actor: parts built by ``build(index)``, stepped ``steps`` wrapper steps per call."""

    def __init__(self, build: PartsBuilder, index: int, cwd: str | None = None) -> None:
        from robolearn.rl.threads import set_torch_threads

        set_torch_threads(1)
        if cwd is not None and Path(cwd).is_dir():  # relative paths in the config mean what they mean there
            os.chdir(cwd)
        self.index = index
        self.env, self.sink, self.acting = build(index)
        self.obs: dict[str, Any] | None = None

    def where(self) -> dict[str, Any]:
        """This actor's process id, Ray node id, index and number of envs."""
        return {"pid": os.getpid(), "node": node_id(), "index": self.index, "num_envs": self.env.num_envs}

    def collect(self, steps: int, weights: dict[str, Any] | None, version: int, reset_seed: int | None,
                uniform: bool, deterministic: bool) -> tuple[int, list[Collected]]:
        """(this process's id, ``steps`` wrapper steps) after loading ``weights`` of update ``version`` and
        resetting the envs with ``reset_seed``, when given. No steps when it was sent no weights but holds none
        (a restarted actor): the caller sends them again."""
        if weights is not None:
            self.acting.load_weights(weights, version)
        elif self.acting.version < 0:
            return os.getpid(), []
        if reset_seed is not None or self.obs is None:
            self.obs = self.env.reset(seed=reset_seed if reset_seed is not None else 10_007 * (self.index + 1))
            self.sink.reset()
        out = []
        for _ in range(steps):
            self.obs, step = step_wrapper(self.env, self.sink, self.acting, self.obs, uniform, deterministic)
            step.record.actor = self.index
            out.append(step)
        return os.getpid(), out

    def flush(self) -> Batch | None:
        return self.sink.flush()


def actor_name(run: Path) -> str:
    """The name prefix of a run's actors: the same for every learner process of that run directory."""
    return "robolearn-collect-" + hashlib.sha1(str(Path(run).resolve()).encode()).hexdigest()[:12]


class RayCollector:
    """``actors`` Ray actors collecting for the loop (see the module docstring)."""

    def __init__(self, build: PartsBuilder, actors: int, weight_sync_every: int, run: Path,
                 address: str | None = "auto", chunk: int = 16, max_restarts: int = 3) -> None:
        if actors < 1 or weight_sync_every < 1 or chunk < 1:
            raise ValueError(f"actors, weight_sync_every and chunk must be >= 1, got {actors}, "
                             f"{weight_sync_every}, {chunk}")
        self.build, self.count, self.every, self.chunk = build, actors, weight_sync_every, chunk
        self.name, self.address, self.max_restarts = actor_name(run), address, max_restarts
        self.faults: list[str] = []
        self.restarts = 0
        self.lost_env_steps = 0
        self.handles: list[Any] = []
        self.inflight: dict[Any, int] = {}
        """Object ref of a call in flight -> the actor's index."""
        self.dead: set[int] = set()
        self._stack = ExitStack()
        self._ray: Any = None
        self._weights: Any = None
        self._version = -1
        self._sent: list[int] = []
        self._reset: list[int | None] = []
        self._per_call: list[int] = []
        self._strikes: list[int] = []
        self._retry_at: list[float] = []
        self._pid: list[int] = []
        self._suspect: list[int] = []
        """Env steps of the first call that failed as unavailable since the actor last delivered: lost if it
        turns out to have died (its next delivery comes from a new process)."""
        self._seed = 0

    def start(self, seed: int) -> None:
        """Connect, create (or take over) the actors, wait until each has built its envs."""
        self._ray = ray = self._stack.enter_context(connect(self.address))
        remote = ray.remote(CollectorActor)
        self.handles = [remote.options(
            name=f"{self.name}-{i}", namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=1,
            max_restarts=self.max_restarts, max_task_retries=0, scheduling_strategy="SPREAD",
        ).remote(self.build, i, os.getcwd()) for i in range(self.count)]
        try:
            found = ray.get([h.where.remote() for h in self.handles], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as err:
            cpus = ray.cluster_resources().get("CPU", 0)
            self.stop()
            raise RuntimeError(f"{self.count} Ray actors (one CPU each) did not start in {START_TIMEOUT_S:.0f} s "
                               f"on a cluster of {cpus:g} CPUs: lower actors or add nodes") from err
        except ray.exceptions.RayActorError as err:
            self.stop()
            raise RuntimeError(f"a Ray actor could not build its envs ({_first_line(err)}): run the config with "
                               "runner=sync to see the error") from err
        self._seed = seed
        self._strikes, self._sent = [0] * self.count, [-2] * self.count
        self._per_call = [self.chunk * w["num_envs"] for w in found]  # env steps of a call, until one tells
        self._retry_at = [0.0] * self.count
        self._pid = [w["pid"] for w in found]
        self._suspect = [0] * self.count
        self._reset = [self._actor_seed(i) for i in range(self.count)]

    def _actor_seed(self, index: int) -> int:
        """Actor ``index``'s env seed (a restarted actor's differs from the one it started with)."""
        return self._seed + 10_007 * (index + 1) + 7 * self._strikes[index]

    def where(self) -> list[dict[str, Any]]:
        """Process id and node id of every live actor (tests: which process to kill, which node hosts it); waits
        for an actor that is restarting."""
        return [self._where(h) for i, h in enumerate(self.handles) if i not in self.dead]

    def _where(self, handle: Any) -> dict[str, Any]:
        ray, deadline = self._ray, time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return ray.get(handle.where.remote(), timeout=START_TIMEOUT_S)
            except ray.exceptions.ActorUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def collect(self, acting: Acting, uniform: bool, deterministic: bool) -> list[Collected]:
        """Send fresh weights, keep a call in flight per actor, return the steps of the calls that finished
        (waits up to a second for one). An actor that delivered is sent its next call before its steps are
        returned, so it steps while the learner updates on them."""
        ray = self._ray
        self._sync(acting)
        self._submit(uniform, deterministic)
        ready, rest = ray.wait(list(self.inflight), num_returns=1, timeout=1.0)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        out: list[Collected] = []
        for ref in ready:
            i = self.inflight.pop(ref)
            try:
                pid, steps = ray.get(ref)
            except ray.exceptions.ActorUnavailableError:  # restarting (or unreachable): send the call again soon
                self._suspect[i] = self._suspect[i] or self._per_call[i]  # the first one is the lost one
                self._sent[i], self._retry_at[i] = -2, time.monotonic() + 0.5
                continue
            except ray.exceptions.RayActorError as err:
                self._fault(i, err)
                continue
            self._delivered(i, pid, steps)
            out += steps
        self._submit(uniform, deterministic)
        return out

    def _submit(self, uniform: bool, deterministic: bool) -> None:
        """A call to every live actor without one in flight (the weights when it has not got this version)."""
        busy, now = set(self.inflight.values()), time.monotonic()
        for i, handle in enumerate(self.handles):
            if i in busy or i in self.dead or now < self._retry_at[i]:
                continue
            weights = self._weights if self._sent[i] != self._version else None
            ref = handle.collect.remote(self.chunk, weights, self._version, self._reset[i], uniform, deterministic)
            self._sent[i], self._reset[i] = self._version, None
            self.inflight[ref] = i

    def _delivered(self, index: int, pid: int, steps: list[Collected]) -> None:
        """Book a finished call. A new process id means the actor died and Ray restarted it (it reset its envs):
        the first call that failed meanwhile is counted as lost."""
        if pid != self._pid[index]:
            lost, self.restarts = self._suspect[index], self.restarts + 1
            self.lost_env_steps += lost
            self.faults.append(f"actor {index} died and was restarted (process {self._pid[index]} -> {pid}; "
                               f"{lost} env steps lost)")
        self._pid[index], self._suspect[index] = pid, 0
        if not steps:  # it holds no weights (restarted before this call): send them with the next one
            self._sent[index] = -2
            return
        self._per_call[index] = sum(s.env_steps for s in steps)
        self._strikes[index] = 0

    def _sync(self, acting: Acting) -> None:
        """The acting policy's actor weights into the object store every ``weight_sync_every`` updates."""
        if self._weights is None or acting.version - self._version >= self.every:
            state = {k: v.detach().cpu().numpy() for k, v in acting.actor_state().items()}
            self._weights, self._version = self._ray.put(state), acting.version

    def _fault(self, index: int, err: Exception) -> None:
        """A call that failed with the actor dead (not restarting): its steps are lost (counted); after
        ``max_restarts`` such failures in a row the run goes on without the actor."""
        lost = self._per_call[index]
        self.lost_env_steps += lost
        self._strikes[index] += 1
        self._sent[index], self._reset[index] = -2, self._actor_seed(index)
        reason = _first_line(err)
        self.faults.append(f"actor {index} died during a call ({lost} env steps lost): {reason}")
        if self._strikes[index] > self.max_restarts:
            self.dead.add(index)
            self.faults.append(f"actor {index} died {self._strikes[index]} times in a row; collecting without it")
            if len(self.dead) == self.count:
                raise RuntimeError(f"every Ray actor died: {reason}")

    def flush(self) -> list[Batch]:
        """What the actors' sinks hold back (an actor that does not answer is skipped); first, whether an actor
        whose calls failed as unavailable since it last delivered has died (waits for it to be restarted)."""
        if not self.handles:
            return []
        ray, out = self._ray, []
        for i, handle in enumerate(self.handles):
            if i in self.dead:
                continue
            if self._suspect[i]:
                try:
                    self._delivered(i, self._where(handle)["pid"], [])
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                    continue
            try:
                tail = ray.get(handle.flush.remote(), timeout=60.0)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue
            if tail is not None:
                out.append(tail)
        return out

    def stop(self) -> None:
        """Kill the actors (they are detached: they would outlive the run) and leave the cluster."""
        if self._ray is not None:
            for handle in self.handles:
                try:
                    self._ray.kill(handle, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self.handles, self.inflight = [], {}
        self._stack.close()

    def close(self) -> None:
        self.stop()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def wait_gone(ray: Any, name: str, count: int, timeout: float = 30.0) -> bool:
    """True once none of the actors ``name-0 .. name-(count-1)`` is registered any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = 0
        for i in range(count):
            try:
                ray.get_actor(f"{name}-{i}", namespace=NAMESPACE)
                alive += 1
            except ValueError:
                pass
        if alive == 0:
            return True
        time.sleep(0.2)
    return False
