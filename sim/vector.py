"""Batched robolearn environments: :func:`make_vec_env` and the threaded :class:`MujocoVectorEnv`.

Every backend returns a :class:`gymnasium.vector.VectorEnv` with **same-step autoreset**, as gymnasium 1.x
defines it for ``AutoresetMode.SAME_STEP``: when env ``i`` terminates or is truncated in ``step``, it is
reset inside that same call, the returned ``obs[i]`` is the first observation of its next episode, and
the last observation and info of the finished episode are in ``infos["final_obs"][i]`` (an object array
of observation dicts) and ``infos["final_info"]`` (a dict of batched arrays), with boolean masks
``infos["_final_obs"]`` / ``infos["_final_info"]``. Rewards, ``terminated`` and ``truncated`` are those
of the finished episode's last step.

``backend="threads"`` builds the unwrapped :class:`~robolearn.sim.mujoco_env.MujocoTaskEnv`
of every env and applies the registry's time limit itself (``truncated`` when ``max_episode_steps``
control steps have elapsed, as gymnasium's ``TimeLimit`` does). A pool of threads each steps a
contiguous slice of the envs (``pre_step`` -> ``physics_step`` -> ``post_step`` -> reset if done).
``mj_step`` releases the GIL, so one thread's physics overlaps another's Python and the physics of
several envs runs on several cores; each env's result does not depend on the threads, so runs are
deterministic given the seed and identical to the ``sync`` backend's. Threads rather than
``mujoco.rollout``: rollout needs a state copy-out/copy-in and an ``mj_forward`` per env and control
step, is no faster than threads (docs/results.md) and does not carry MuJoCo's solver warm-start across
control steps, so it would change the physics.

``backend="processes"`` (:mod:`robolearn.sim.vector_processes`) steps slices of the envs in worker
processes with the same per-env code: for tasks whose Python runs around every physics step (the
quadrotor's rate loop), where threads would queue on the GIL.

Without ``backend=``, each task gets the backend its registry row names (``TaskSpec.vec_backend``, set
from what ``bench/sim_throughput.py`` measures faster), see :func:`default_backend`.

``backend="sync"`` is gymnasium's own ``SyncVectorEnv`` over ``gymnasium.make(env_id)`` with
same-step autoreset, for comparison; all backends produce the same trajectories for the same seeds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space

from robolearn.sim.mujoco_env import ActionError, MujocoTaskEnv
from robolearn.sim.registry import TASKS, gym_make, register_all

Backend = Literal["threads", "processes", "sync"]
BACKENDS: tuple[str, ...] = ("threads", "processes", "sync")
StepResult = tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any],
                   tuple[dict[str, np.ndarray], dict[str, Any]] | None]
"""``(obs, reward, terminated, truncated, info, reset)`` of one env's step (see :func:`step_env`)."""


def make_vec_env(
    env_id: str,
    num_envs: int,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    backend: Backend | None = None,
    num_threads: int | None = None,
    max_episode_steps: int | None = None,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of a registered robolearn task, batched with same-step autoreset.

    Args:
        env_id: a registered id, e.g. ``"robolearn/PandaLift-v0"``.
        num_envs: number of envs (>= 1).
        seed: when given, the first ``reset()`` called without a seed seeds env ``i`` with ``seed + i``
            (as ``reset(seed=seed)`` would); the batched action space is seeded with it too.
        env_kwargs: keyword arguments of every env (``config=...``, ``render_mode="rgb_array"``...).
        backend: ``"threads"`` (:class:`MujocoVectorEnv`), ``"processes"``
            (:class:`~robolearn.sim.vector_processes.ProcessVectorEnv`) or ``"sync"`` (gymnasium's
            ``SyncVectorEnv``); default (None): :func:`default_backend`.
        num_threads: threads of the ``threads`` backend, worker processes of the ``processes`` backend;
            default ``min(num_envs, usable CPUs)``.
        max_episode_steps: episode time limit in control steps; default: the registry's.

    Returns:
        A :class:`gymnasium.vector.VectorEnv` whose observations are dicts of ``(num_envs, ...)`` float32
        arrays and whose actions are ``(num_envs, action_dim)`` arrays in the task's physical units.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(num_envs, int | np.integer) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    register_all()
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("robolearn/"))
        raise KeyError(f"unknown env id {env_id!r}; registered robolearn ids: {', '.join(known)}")
    kwargs = dict(env_kwargs or {})
    if max_episode_steps is None:
        max_episode_steps = gym.spec(env_id).max_episode_steps
    if backend is None:
        backend = default_backend(env_id, int(num_envs))
    if backend == "processes":
        from robolearn.sim.vector_processes import ProcessVectorEnv

        vec: gym.vector.VectorEnv = ProcessVectorEnv(env_id, int(num_envs), kwargs, max_episode_steps=max_episode_steps,
                                                     num_workers=num_threads, seed=seed)
    elif backend == "sync":
        fns = [_env_fn(env_id, kwargs, max_episode_steps) for _ in range(int(num_envs))]
        vec = _SeededSyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
        vec.default_seed = seed
    else:
        envs = []
        for _ in range(int(num_envs)):
            env = gym_make(env_id, disable_env_checker=True, **kwargs).unwrapped
            if not isinstance(env, MujocoTaskEnv):
                raise TypeError(f"backend='threads' needs a MujocoTaskEnv; {env_id} is {type(env).__name__}")
            envs.append(env)
        vec = MujocoVectorEnv(envs, max_episode_steps=max_episode_steps, num_threads=num_threads, seed=seed)
    if seed is not None:
        vec.action_space.seed(seed)
    return vec


def default_backend(env_id: str, num_envs: int) -> str:
    """The backend ``make_vec_env`` uses when none is named.

    The task's :attr:`~robolearn.sim.registry.TaskSpec.vec_backend` (what ``bench/sim_throughput.py``
    measured faster for it), except that one env, or one usable CPU, runs inline in ``threads``: a
    worker process would only add a pipe round trip per step.
    """
    spec = TASKS.get(env_id)
    if spec is None or num_envs < 2 or _usable_cpus() < 2:
        return "threads"
    return spec.vec_backend


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _env_fn(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None) -> Callable[[], gym.Env]:
    return lambda: gym_make(env_id, disable_env_checker=True, max_episode_steps=max_episode_steps, **kwargs)


class _SeededSyncVectorEnv(SyncVectorEnv):
    """gymnasium's ``SyncVectorEnv`` whose first unseeded ``reset`` uses ``make_vec_env``'s seed."""

    default_seed: int | None = None

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        if seed is None and self.default_seed is not None:
            seed, self.default_seed = self.default_seed, None
        return super().reset(seed=seed, options=options)


def step_env(env: MujocoTaskEnv, action: np.ndarray, at_limit: bool,
             lock: AbstractContextManager[Any] | None = None) -> StepResult:
    """One env's control step with same-step autoreset.

    Args:
        env: the unwrapped env.
        action: its action ``(action_dim,)``, physical units.
        at_limit: this step reaches the time limit (the step is then truncated).
        lock: held around the Python phases (``pre_step``, ``post_step``), not around the physics.

    Returns:
        ``(obs, reward, terminated, truncated, info, reset)`` where ``reset`` is ``(obs, info)`` of the
        next episode when this one ended, else None.
    """
    if lock is None:
        env.pre_step(action)
        env.physics_step()
        obs, reward, term, trunc, info = env.post_step()
    else:
        with lock:
            env.pre_step(action)
        env.physics_step()
        with lock:
            obs, reward, term, trunc, info = env.post_step()
    trunc = bool(trunc) or at_limit
    reset = env.reset() if term or trunc else None
    return obs, float(reward), bool(term), trunc, info, reset


class BatchedEnvBase(gym.vector.VectorEnv):
    """Same-step autoreset, time limit, seeding and batching shared by the threaded and process backends.

    Subclasses step and reset the envs (:meth:`_reset_envs`, :meth:`_step_envs`); this class checks the
    actions, tracks ``episode_steps`` and batches observations and infos in env order, so every
    backend returns the same arrays and infos for the same seeds.

    Attributes:
        episode_steps: ``(num_envs,)`` int64, control steps elapsed in each env's episode; writable
            (the rsl_rl adapter randomises it); an env is truncated when it reaches ``max_episode_steps``.
    """

    def _setup(self, task_id: str, num_envs: int, action_space: gym.spaces.Box, observation_space: gym.spaces.Dict,
               metadata: dict[str, Any], render_mode: str | None, max_episode_steps: int | None,
               seed: int | None) -> None:
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.num_envs = num_envs
        self.single_action_space = action_space
        self.single_observation_space = observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {**metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.render_mode = render_mode
        self.spec = None
        self.max_episode_steps = max_episode_steps
        self.episode_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._obs_keys = list(self.single_observation_space.keys())
        self._default_seed = seed
        self._needs_reset = True
        self._task_id = task_id

    def _reset_envs(self, ids: list[int], seeds: list[int | None],
                    options: dict[str, Any] | None) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
        """``envs[i].reset(seed=seeds[i], options=options)`` for each ``i`` of ``ids``, in that order."""
        raise NotImplementedError

    def _step_envs(self, acts: np.ndarray, at_limit: np.ndarray) -> list[StepResult]:
        """:func:`step_env` of every env: ``acts`` ``(num_envs, action_dim)``, ``at_limit`` ``(num_envs,)`` bool."""
        raise NotImplementedError

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset all envs, or those of ``options["reset_mask"]`` (a ``(num_envs,)`` bool array).

        ``seed``: ``None``, an int (env ``i`` gets ``seed + i``) or one seed (or None) per env.
        Returns ``(obs, infos)``: a dict of ``(num_envs, ...)`` float32 arrays and the batched reset infos.
        """
        if seed is None and self._default_seed is not None:
            seed, self._default_seed = self._default_seed, None
        seeds = self._seeds(seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            ids = list(range(self.num_envs))
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                                 f"got {mask.dtype} {mask.shape}")
            if self._needs_reset and not mask.all():
                raise RuntimeError("the first reset must reset every env (no reset_mask, or all True)")
            ids = np.flatnonzero(mask).tolist()
        results = self._reset_envs(ids, seeds, options or None)
        if mask is None:
            self._obs = {k: np.zeros((self.num_envs, *s.shape), s.dtype)
                         for k, s in self.single_observation_space.items()}
        infos: dict[str, Any] = {}
        for i, (obs, info) in zip(ids, results, strict=True):
            self._write_obs(i, obs)
            infos = self._add_info(infos, info, i)
            self.episode_steps[i] = 0
        self._needs_reset = False
        return self._copy_obs(), infos

    def step(self, actions: Any):
        """Step every env with ``actions`` ``(num_envs, action_dim)`` (physical units; clipped per env).

        Returns ``(obs, rewards (num_envs,) float64, terminated (num_envs,) bool, truncated (num_envs,)
        bool, infos)``; finished envs are reset in the same call (see the module docstring).
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        acts = self._check_actions(actions)
        limit = self.max_episode_steps
        at_limit = (np.zeros(self.num_envs, np.bool_) if limit is None else self.episode_steps + 1 >= limit)
        results = self._step_envs(acts, at_limit)
        rewards = np.zeros(self.num_envs, np.float64)
        terminated = np.zeros(self.num_envs, np.bool_)
        truncated = np.zeros(self.num_envs, np.bool_)
        self.episode_steps += 1
        infos: dict[str, Any] = {}
        for i, (obs, reward, term, trunc, info, reset) in enumerate(results):
            rewards[i], terminated[i], truncated[i] = reward, term, trunc
            if reset is not None:
                infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                obs, info = reset
                self.episode_steps[i] = 0
            self._write_obs(i, obs)
            infos = self._add_info(infos, info, i)
        return self._copy_obs(), rewards, terminated, truncated, infos

    # ----------------------------------------------------------------- helpers
    def _check_actions(self, actions: Any) -> np.ndarray:
        expected = (self.num_envs, *self.single_action_space.shape)
        try:
            acts = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ActionError(f"{self._name}: actions must be a numeric array {expected}: {err}") from None
        if acts.shape != expected:
            raise ActionError(f"{self._name}: action batch has shape {acts.shape}, expected {expected} "
                              "(num_envs, action_dim)")
        bad = ~np.isfinite(acts).all(axis=1)
        if bad.any():
            envs = np.flatnonzero(bad).tolist()
            raise ActionError(f"{self._name}: actions of envs {envs} contain NaN or inf")
        return acts

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        return seeds

    def _write_obs(self, i: int, obs: dict[str, np.ndarray]) -> None:
        for key in self._obs_keys:
            self._obs[key][i] = obs[key]

    def _copy_obs(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._obs.items()}

    @property
    def _name(self) -> str:
        return f"{type(self).__name__}({self._task_id} x{self.num_envs})"


class MujocoVectorEnv(BatchedEnvBase):
    """Steps many :class:`MujocoTaskEnv` in a thread pool, with same-step autoreset and a time limit.

    Args:
        envs: the unwrapped envs (same task and spaces), owned (and closed) by this object.
        max_episode_steps: time limit in control steps (``None``: no limit).
        num_threads: worker threads; default ``min(len(envs), usable CPUs)``; 1 steps inline.
        seed: seed of the first unseeded ``reset()`` (env ``i`` gets ``seed + i``).

    Attributes:
        episode_steps: ``(num_envs,)`` int64, control steps elapsed in each env's episode; writable
            (the rsl_rl adapter randomises it); an env is truncated when it reaches ``max_episode_steps``.
    """

    def __init__(self, envs: Sequence[MujocoTaskEnv], max_episode_steps: int | None = None,
                 num_threads: int | None = None, seed: int | None = None):
        if not envs:
            raise ValueError("MujocoVectorEnv needs at least one env")
        self.envs = list(envs)
        first = self.envs[0]
        for env in self.envs[1:]:
            if env.action_space != first.action_space or env.observation_space != first.observation_space:
                raise ValueError("all envs of a MujocoVectorEnv must share action and observation spaces")
        self._setup(first.spec_id, len(self.envs), first.action_space, first.observation_space, first.metadata,
                    first.render_mode, max_episode_steps, seed)
        threads = min(self.num_envs, _usable_cpus()) if num_threads is None else int(num_threads)
        if threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if any(env.pixels.cfg.cameras for env in self.envs):
            # Offscreen rendering dominates a pixel env's step, and on a CPU renderer switching GL contexts
            # between pool threads costs far more than stepping the envs inline (bench/render_throughput.py).
            threads = 1
        self.num_threads = min(threads, self.num_envs)
        self._chunks = [c.tolist() for c in np.array_split(np.arange(self.num_envs), self.num_threads)]
        self._pool = ThreadPoolExecutor(self.num_threads, "robolearn-vec") if self.num_threads > 1 else None
        # One thread at a time runs an env's Python (pre_step/post_step). Without this lock, the small
        # MuJoCo calls inside them (mj_jacSite, mju_*), which release the GIL, hand it to the other
        # threads' Python and back at every call, and this GIL ping-pong costs more than
        # overlapping the Python phases gains. Physics (mj_step) runs outside the lock, in parallel.
        self._python_lock = threading.Lock()
        self._results: list[Any] = [None] * self.num_envs

    def _reset_envs(self, ids: list[int], seeds: list[int | None],
                    options: dict[str, Any] | None) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
        chosen = set(ids)

        def work(chunk: list[int]) -> None:
            for i in chunk:
                if i in chosen:
                    self._results[i] = self.envs[i].reset(seed=seeds[i], options=options)

        self._run(work)
        return [self._results[i] for i in ids]

    def _step_envs(self, acts: np.ndarray, at_limit: np.ndarray) -> list[StepResult]:
        lock = self._python_lock if self._pool is not None else None
        limits = at_limit.tolist()

        def work(chunk: list[int]) -> None:
            for i in chunk:
                self._results[i] = step_env(self.envs[i], acts[i], limits[i], lock)

        self._run(work)
        return list(self._results)

    def render(self) -> tuple[np.ndarray | None, ...]:
        """One frame per env (``(H, W, 3)`` uint8 with ``render_mode="rgb_array"``, else None)."""
        return tuple(env.render() for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every env (or read attribute ``name``); one result per env."""
        results = []
        for env in self.envs:
            attr = getattr(env, name)
            results.append(attr(*args, **kwargs) if callable(attr) else attr)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every env."""
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` of every env: one value for all, or a list/tuple of one per env."""
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"set_attr({name!r}): got {len(values)} values for {self.num_envs} envs")
        for env, value in zip(self.envs, values, strict=True):
            setattr(env, name, value)

    def close_extras(self, **kwargs: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for env in self.envs:
            env.close()

    # ----------------------------------------------------------------- helpers
    def _run(self, work: Callable[[list[int]], None]) -> None:
        """Run ``work`` on every chunk of env indices, in the pool when there is one."""
        if self._pool is None:
            work(self._chunks[0])
        else:
            for _ in self._pool.map(work, self._chunks):  # re-raises a worker's exception here
                pass
