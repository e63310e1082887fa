"""What the batched backends share: one env's step with autoreset, and :class:`BatchedEnvBase`.

:class:`~robolearn.sim.vector.MujocoVectorEnv` (threads) and
:class:`~robolearn.sim.vector_processes.ProcessVectorEnv` (worker processes) both step each env with
:func:`step_env` and batch the results with :class:`BatchedEnvBase`, so they return identical arrays and
infos; :func:`robolearn.sim.vector.make_vec_env` builds either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from robolearn.sim.mujoco_env import ActionError, MujocoTaskEnv

StepResult = tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any],
                   tuple[dict[str, np.ndarray], dict[str, Any]] | None]
"""``(obs, reward, terminated, truncated, info, reset)`` of one env's step (see :func:`step_env`)."""


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def step_env(env: MujocoTaskEnv, action: np.ndarray, at_limit: bool) -> StepResult:
    """One env's control step with same-step autoreset.

    Args:
        env: the unwrapped env.
        action: its action ``(action_dim,)``, physical units.
        at_limit: this step reaches the time limit (the step is then truncated).

    Returns:
        ``(obs, reward, terminated, truncated, info, reset)`` where ``reset`` is ``(obs, info)`` of the
        next episode when this one ended, else None.
    """
    env.pre_step(action)
    env.physics_step()
    return finish_step(env, at_limit)


def finish_step(env: MujocoTaskEnv, at_limit: bool) -> StepResult:
    """The part of :func:`step_env` after the physics: ``post_step``, the time limit and the autoreset."""
    obs, reward, term, trunc, info = env.post_step()
    trunc = bool(trunc) or at_limit
    reset = env.reset() if term or trunc else None
    return obs, float(reward), bool(term), trunc, info, reset


_SCALARS = frozenset((int, float, bool))


def batch_infos(infos: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The infos of every env batched as ``VectorEnv._add_info`` batches them one env at a time, or None.

    One array per key (the type of env 0's value, as gymnasium picks it) and an all-True ``_key`` mask;
    nested dicts are batched the same way. Built column by column, which costs a fraction of the
    per-env calls; returns None unless every env's info has the same keys, in the same order, with
    values of one kind per key (numbers, arrays of one shape, dicts), so callers fall back to
    ``_add_info``. Same arrays, dtypes and masks as gymnasium's (``tests/sim/test_batch_infos.py``).
    """
    n, first = len(infos), infos[0]
    keys = list(first)
    if any(list(info) != keys for info in infos[1:]):
        return None
    out: dict[str, Any] = {}
    for key in keys:
        if key == "final_obs":
            return None
        values = [info[key] for info in infos]
        head = values[0]
        if isinstance(head, dict):
            if not all(isinstance(v, dict) for v in values):
                return None
            array = batch_infos(values)
            if array is None:
                return None
        elif type(head) in _SCALARS or isinstance(head, np.number):
            kinds = {type(v) for v in values}
            if not (kinds <= _SCALARS or all(issubclass(k, np.number | int | float | bool) for k in kinds)):
                return None
            array = np.array(values, dtype=type(head))
        elif isinstance(head, np.ndarray):
            if not all(isinstance(v, np.ndarray) and v.shape == head.shape for v in values):
                return None
            array = np.array(values, dtype=head.dtype)
        elif any(isinstance(v, dict) for v in values):
            return None
        else:
            array = np.empty(n, dtype=object)
            for i, v in enumerate(values):
                array[i] = v
        out[key] = array
        out[f"_{key}"] = np.ones(n, dtype=np.bool_)
    return out


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
        finals = False
        step_infos = []
        for i, (obs, reward, term, trunc, info, reset) in enumerate(results):
            rewards[i], terminated[i], truncated[i] = reward, term, trunc
            if reset is not None:
                finals = True
                obs, info = reset
                self.episode_steps[i] = 0
            self._write_obs(i, obs)
            step_infos.append(info)
        infos = None if finals else batch_infos(step_infos)
        if infos is None:  # an env reset (keys then come in gymnasium's env-by-env order) or the infos differ
            infos = {}
            for i, (info, (obs, _, _, _, last_info, reset)) in enumerate(zip(step_infos, results, strict=True)):
                if reset is not None:
                    infos = self._add_info(infos, {"final_obs": obs, "final_info": last_info}, i)
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
