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
control steps have elapsed, as gymnasium's ``TimeLimit`` does). A step runs in three phases:
every env's ``pre_step`` on the calling thread, then the physics of contiguous slices of the envs on
the calling thread and a pool of threads (``mj_step`` and a task's compiled physics jobs release the
GIL, so the slices run on several cores), then every ``post_step`` and autoreset on the calling
thread. Python is serial under the GIL in any case; phasing it hands work between threads once per
batched step rather than at every env, where each handoff costs tens of microseconds on a VM. Each
env's result does not depend on the threads, so runs are deterministic given the seed and identical
to the ``sync`` backend's. Threads rather than
``mujoco.rollout``: rollout needs a state copy-out/copy-in and an ``mj_forward`` per env and control
step, is no faster than threads (docs/results.md) and does not carry MuJoCo's solver warm-start across
control steps, so it would change the physics.

``backend="processes"`` (:mod:`robolearn.sim.vector_processes`) steps slices of the envs in worker
processes with the same per-env code: for tasks whose Python runs around every physics step (the
quadrotor's rate loop), where threads would queue on the GIL.

Without ``backend=``, each task gets the backend its registry row names (``TaskSpec.vec_backend``, set
from what ``bench/sim_throughput.py`` measures faster), and envs with cameras get ``processes``: their step is
81-93% offscreen rendering, which a CPU renderer does on the calling thread, so only worker processes render
several envs at once (``bench/render_throughput.py``); see :func:`default_backend`.

``backend="sync"`` is gymnasium's own ``SyncVectorEnv`` over ``gymnasium.make(env_id)`` with
same-step autoreset, for comparison; all backends produce the same trajectories for the same seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from robolearn.sim.mujoco_env import MujocoTaskEnv, clip_to_box
from robolearn.sim.registry import TASKS, gym_make, register_all
from robolearn.sim.vector_base import BatchedEnvBase, StepResult, finish_step, step_env, usable_cpus
from robolearn.sim.vector_processes import ProcessVectorEnv

Backend = Literal["threads", "processes", "sync"]
BACKENDS: tuple[str, ...] = ("threads", "processes", "sync")


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
        backend = default_backend(env_id, int(num_envs), pixels=_has_cameras(kwargs.get("pixels")))
    if backend == "processes":
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


def default_backend(env_id: str, num_envs: int, pixels: bool = False) -> str:
    """The backend ``make_vec_env`` uses when none is named.

    The task's :attr:`~robolearn.sim.registry.TaskSpec.vec_backend` (what ``bench/sim_throughput.py``
    measured faster for it), or ``processes`` for envs that render cameras (``pixels``): the threads backend
    renders them one at a time, worker processes on every core (1.03-1.27x the frames/s in the median round
    on 2 cores at load 5-8, more with idle cores; ``bench/render_throughput.py``, docs/results.md). One env,
    or one usable CPU, runs inline in ``threads``: a worker process would only add a pipe round trip per step.
    """
    spec = TASKS.get(env_id)
    if spec is None or num_envs < 2 or usable_cpus() < 2:
        return "threads"
    return "processes" if pixels else spec.vec_backend


def _has_cameras(pixels: Any) -> bool:
    """Whether an env's ``pixels`` keyword argument (a dict, a PixelConfig or None) names cameras."""
    cameras = pixels.get("cameras") if isinstance(pixels, dict) else getattr(pixels, "cameras", None)
    return bool(cameras)


def _env_fn(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None) -> Callable[[], gym.Env]:
    return lambda: gym_make(env_id, disable_env_checker=True, max_episode_steps=max_episode_steps, **kwargs)


class _SeededSyncVectorEnv(SyncVectorEnv):
    """gymnasium's ``SyncVectorEnv`` whose first unseeded ``reset`` uses ``make_vec_env``'s seed."""

    default_seed: int | None = None

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        if seed is None and self.default_seed is not None:
            seed, self.default_seed = self.default_seed, None
        return super().reset(seed=seed, options=options)


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
        threads = min(self.num_envs, usable_cpus()) if num_threads is None else int(num_threads)
        if threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if any(env.pixels.cfg.cameras for env in self.envs):
            # Offscreen rendering dominates a pixel env's step, and on a CPU renderer switching GL contexts
            # between pool threads costs far more than stepping the envs inline (bench/render_throughput.py).
            threads = 1
        self.num_threads = min(threads, self.num_envs)
        self._chunks = [c.tolist() for c in np.array_split(np.arange(self.num_envs), self.num_threads)]
        self._pool = ThreadPoolExecutor(self.num_threads - 1, "robolearn-vec") if self.num_threads > 1 else None
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
        """Every env's step in three phases: ``pre_step`` of each env on this thread, the physics of the
        env slices on the threads (``mj_step`` and compiled physics jobs release the GIL), then
        ``post_step`` and the autoresets on this thread.

        Python runs serially in any case (the GIL). Phasing it hands the GIL and the work between threads
        once per batched step instead of at every env, where each handoff costs tens of microseconds on
        a virtual machine; a task's compiled physics jobs (:meth:`MujocoTaskEnv.physics_job`) run one
        call per slice.
        """
        limits = at_limit.tolist()
        if self._pool is None:
            return [step_env(env, a, lim) for env, a, lim in zip(self.envs, acts, limits, strict=True)]
        first = self.envs[0]
        # every env has this action space (checked at init); acts: checked shape and finite (BatchedEnvBase)
        clipped, counts = clip_to_box(acts, *first._bounds(first.action_space))
        jobs = []
        for env, a, n_clipped in zip(self.envs, clipped, counts.tolist(), strict=True):
            env.apply_clipped(a, n_clipped)
            jobs.append(env.physics_job())
        outputs: list[Any] = [None] * self.num_envs

        def physics(chunk: list[int]) -> None:
            by_runner: dict[Callable[[list[tuple]], list[Any]], list[int]] = {}  # all envs of a task share one
            for i in chunk:
                if jobs[i] is None:
                    self.envs[i].physics_step()
                else:
                    by_runner.setdefault(jobs[i][0], []).append(i)
            for run_many, ids in by_runner.items():
                for i, out in zip(ids, run_many([jobs[i][1] for i in ids]), strict=True):
                    outputs[i] = out

        self._run(physics)
        for env, job, out in zip(self.envs, jobs, outputs, strict=True):
            if job is not None:
                env.finish_physics(out)
        return [finish_step(env, lim) for env, lim in zip(self.envs, limits, strict=True)]

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
        """Run ``work`` on every chunk of env indices: the first on this thread, the others in the pool."""
        if self._pool is None:
            work(self._chunks[0])
            return
        futures = [self._pool.submit(work, chunk) for chunk in self._chunks[1:]]
        try:
            work(self._chunks[0])
        finally:
            for future in futures:
                future.result()  # re-raises a worker's exception here
