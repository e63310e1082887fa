"""``backend="processes"``: the envs stepped in worker processes, one contiguous slice of envs per worker.

Threads share one interpreter, so only the physics of a threaded batch runs in parallel and the
Python of every env's step queues on the GIL. Worker processes each have their own interpreter, so
their Python runs in parallel too, at the price of sending actions and results through a pipe
(pickled, a few tens of microseconds per worker and step). That pays only where cores sit idle for
the workers: on a loaded machine each woken worker waits for a core and runs its step with cold
caches, and ``bench/sim_throughput.py`` measures threads faster (which is why no task names this
backend as its default there).

Workers are fresh interpreters (``python -c``), not forks or ``multiprocessing`` children: a fork of a
parent whose threads (torch's, a threaded env's) hold locks can deadlock, and ``spawn``/``forkserver``
re-import the parent's main script, which breaks any script without an ``if __name__ == "__main__"``
guard. They find the parent's code through its ``sys.path`` and connect back over a Unix socket with
a random key. Each worker builds its envs with :func:`robolearn.sim.registry.gym_make` and steps them with the same
:func:`robolearn.sim.vector_base.step_env` as the threaded backend; :class:`BatchedEnvBase` batches the
results in the parent. Env ``i`` runs the same code on the same seed as in the other backends, so
the three backends return identical arrays and infos.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import traceback
from multiprocessing.connection import Connection, Listener
from typing import Any

import numpy as np

from robolearn.sim.mujoco_env import MujocoTaskEnv
from robolearn.sim.registry import gym_make
from robolearn.sim.vector_base import BatchedEnvBase, StepResult, step_env, usable_cpus


class WorkerError(RuntimeError):
    """An exception raised inside a worker process; its message holds the worker's traceback."""


_BOOT = """
import os, sys, traceback
from multiprocessing.connection import Client
conn = Client(sys.argv[1], authkey=bytes.fromhex(os.environ.pop("ROBOLEARN_VEC_KEY")))
conn.send(int(sys.argv[2]))
try:
    from robolearn.sim.vector_processes import serve
except BaseException:
    conn.send(("error", traceback.format_exc()))
    raise SystemExit(1)
serve(conn)
"""
"""What a worker interpreter runs: connect first (standard library only), then import robolearn."""


def serve(conn: Connection) -> None:
    """A worker's main loop: receive ``(env_id, env_kwargs, count)``, build the envs, serve requests."""
    env_id, env_kwargs, count = conn.recv()
    _worker(conn, env_id, env_kwargs, count)


def _worker(conn: Connection, env_id: str, env_kwargs: dict[str, Any], count: int) -> None:
    """Build ``count`` envs and serve ``(command, payload)`` requests until ``close``."""
    envs: list[MujocoTaskEnv] = []
    try:
        for _ in range(count):
            env = gym_make(env_id, disable_env_checker=True, **env_kwargs).unwrapped
            if not isinstance(env, MujocoTaskEnv):
                raise TypeError(f"backend='processes' needs a MujocoTaskEnv; {env_id} is {type(env).__name__}")
            envs.append(env)
        first = envs[0]
        conn.send(("ok", (first.action_space, first.observation_space, first.metadata, first.render_mode,
                          first.spec_id)))
    except Exception:  # noqa: BLE001  (reported to the parent, which raises it)
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, payload = conn.recv()
        except EOFError:  # the parent exited without closing
            for env in envs:
                env.close()
            return
        try:
            if command == "step":
                acts, limits = payload
                steps = [step_env(env, a, lim) for env, a, lim in zip(envs, acts, limits, strict=True)]
                result: Any = pack_steps(steps)
            elif command == "reset":
                result = [envs[i].reset(seed=seed, options=opts) for i, seed, opts in payload]
            elif command == "call":
                name, args, kwargs = payload
                attrs = [getattr(env, name) for env in envs]
                result = [a(*args, **kwargs) if callable(a) else a for a in attrs]
            elif command == "set_attr":
                name, values = payload
                for env, value in zip(envs, values, strict=True):
                    setattr(env, name, value)
                result = None
            elif command == "close":
                for env in envs:
                    env.close()
                conn.send(("ok", None))
                return
            else:
                raise ValueError(f"unknown worker command {command!r}")
            conn.send(("ok", result))
        except Exception:  # noqa: BLE001  (reported to the parent, which raises it)
            conn.send(("error", traceback.format_exc()))


class ProcessVectorEnv(BatchedEnvBase):
    """Robolearn envs stepped in worker processes, with same-step autoreset and a time limit.

    Args:
        env_id: a registered robolearn task id.
        num_envs: number of envs (>= 1).
        env_kwargs: keyword arguments of every env (picklable).
        max_episode_steps: time limit in control steps (``None``: no limit).
        num_workers: worker processes, each stepping a contiguous slice of the envs; default
            ``min(num_envs, usable CPUs)``.
        seed: seed of the first unseeded ``reset()`` (env ``i`` gets ``seed + i``).

    Attributes:
        episode_steps: ``(num_envs,)`` int64 control steps of each env's episode (see
            :class:`~robolearn.sim.vector.BatchedEnvBase`).
    """

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict[str, Any] | None = None,
                 max_episode_steps: int | None = None, num_workers: int | None = None, seed: int | None = None):
        workers = min(num_envs, usable_cpus()) if num_workers is None else int(num_workers)
        if workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self._slices = chunk_bounds(num_envs, min(workers, num_envs))
        self.num_workers = len(self._slices)
        self._procs: list[subprocess.Popen] = []
        self._conns: list[Connection] = []
        try:
            self._start_workers(env_id, dict(env_kwargs or {}))
            action_space, obs_space, metadata, render_mode, spec_id = self._receive_all()[0]
        except BaseException:
            self._terminate()
            raise
        self._setup(spec_id, num_envs, action_space, obs_space, metadata, render_mode, max_episode_steps, seed)

    def _start_workers(self, env_id: str, env_kwargs: dict[str, Any]) -> None:
        """Launch one interpreter per slice, accept their connections, send each its envs to build."""
        key = secrets.token_bytes(16)
        env = {**os.environ, "ROBOLEARN_VEC_KEY": key.hex(),
               "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
        with Listener(family="AF_UNIX", authkey=key) as listener:
            for index in range(self.num_workers):
                self._procs.append(subprocess.Popen([sys.executable, "-c", _BOOT, str(listener.address), str(index)],
                                                    env=env, stdin=subprocess.DEVNULL))
            conns: dict[int, Connection] = {}
            for _ in range(self.num_workers):
                conn = listener.accept()
                conns[conn.recv()] = conn
        self._conns = [conns[i] for i in range(self.num_workers)]
        for conn, (lo, hi) in zip(self._conns, self._slices, strict=True):
            conn.send((env_id, env_kwargs, hi - lo))

    # ----------------------------------------------------------------- backend
    def _reset_envs(self, ids: list[int], seeds: list[int | None],
                    options: dict[str, Any] | None) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
        for conn, (lo, hi) in zip(self._conns, self._slices, strict=True):
            conn.send(("reset", [(i - lo, seeds[i], options) for i in ids if lo <= i < hi]))
        return [r for part in self._receive_all() for r in part]

    def _step_envs(self, acts: np.ndarray, at_limit: np.ndarray) -> list[StepResult]:
        limits = at_limit.tolist()
        for conn, (lo, hi) in zip(self._conns, self._slices, strict=True):
            conn.send(("step", (acts[lo:hi], limits[lo:hi])))
        return [r for part in self._receive_all() for r in unpack_steps(part)]

    def _receive_all(self) -> list[Any]:
        """One reply per worker, in worker order; raises :class:`WorkerError` after reading them all."""
        replies, errors = [], []
        for conn, (lo, hi) in zip(self._conns, self._slices, strict=True):
            try:
                status, payload = conn.recv()
            except EOFError:
                status, payload = "error", "the worker process exited"
            if status == "error":
                errors.append(f"worker of envs {lo}..{hi - 1}:\n{payload}")
            replies.append(payload)
        if errors:
            raise WorkerError("\n".join(errors))
        return replies

    # ----------------------------------------------------------------- VectorEnv extras
    def render(self) -> tuple[np.ndarray | None, ...]:
        """One frame per env (``(H, W, 3)`` uint8 with ``render_mode="rgb_array"``, else None)."""
        return self.call("render")

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every env (or read attribute ``name``); one (picklable) result per env."""
        for conn in self._conns:
            conn.send(("call", (name, args, kwargs)))
        return tuple(r for part in self._receive_all() for r in part)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every env."""
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` of every env: one value for all, or a list/tuple of one per env."""
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"set_attr({name!r}): got {len(values)} values for {self.num_envs} envs")
        for conn, (lo, hi) in zip(self._conns, self._slices, strict=True):
            conn.send(("set_attr", (name, list(values[lo:hi]))))
        self._receive_all()

    def close_extras(self, **kwargs: Any) -> None:
        """Close the envs and stop the workers."""
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for conn in self._conns:
            try:
                conn.recv()
            except (EOFError, OSError):
                pass
        self._terminate()

    def _terminate(self) -> None:
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []


PackedSteps = tuple[dict[str, np.ndarray], list[tuple[float, bool, bool, dict[str, Any], Any]]]
"""A worker's step results: observations stacked per key ``(k, ...)`` (the next episode's first observation
where an env was reset) and per env ``(reward, terminated, truncated, info, final)``, ``final`` being the
finished episode's ``(obs, info)`` or None. One array per key rather than one per env: pickling a numpy
array costs microseconds whatever its size, and a pipe message per step is on the critical path."""


def pack_steps(results: list[StepResult]) -> PackedSteps:
    """:data:`PackedSteps` of a worker's :func:`~robolearn.sim.vector_base.step_env` results."""
    current = [r[0] if r[5] is None else r[5][0] for r in results]
    obs = {k: np.stack([o[k] for o in current]) for k in current[0]}
    rows = [(reward, term, trunc, info, None) if reset is None else (reward, term, trunc, reset[1], (o, info))
            for o, reward, term, trunc, info, reset in results]
    return obs, rows


def unpack_steps(packed: PackedSteps) -> list[StepResult]:
    """The :func:`~robolearn.sim.vector_base.step_env` results that :func:`pack_steps` packed (obs as views)."""
    obs, rows = packed
    results: list[StepResult] = []
    for j, (reward, term, trunc, info, final) in enumerate(rows):
        current = {k: v[j] for k, v in obs.items()}
        if final is None:
            results.append((current, reward, term, trunc, info, None))
        else:
            results.append((final[0], reward, term, trunc, final[1], (current, info)))
    return results


def chunk_bounds(num_envs: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` bounds of ``parts`` contiguous, near-equal slices of ``range(num_envs)``."""
    return [(int(c[0]), int(c[-1]) + 1) for c in np.array_split(np.arange(num_envs), parts)]
