"""A torch adapter that gives a batched robolearn task rsl_rl's ``VecEnv`` interface.

Written against ``rsl_rl/env/vec_env.py`` of rsl-rl-lib 5.x, so that rsl_rl's ``OnPolicyRunner`` (and other
IsaacGym / Isaac Lab-style trainers) train on robolearn tasks unchanged. rsl_rl is not needed to use it:
the class follows the interface by duck typing (rsl_rl never checks the base class).

* Observations: ``get_observations()`` and ``step`` return a ``TensorDict`` (batch ``[num_envs]``) with the
  group ``"policy"``: every vector observation of the task (``joint_pos``, ``ee_pos``, ``object_pos``...)
  as float32, concatenated in the observation space's key order into ``(num_envs, obs_dim)``;
  ``obs_layout`` maps each key to its slice. Camera observations ``pixels/<camera>`` ``(H, W, 3)`` uint8,
  when enabled, become their own groups ``"pixels_<camera>"``: float32 ``(num_envs, 3, H, W)`` in [0, 1].
* Actions: rsl_rl policies output roughly unit-scale actions, so ``step`` takes ``(num_envs, num_actions)``
  in [-1, 1] (clipped to it) and maps it affinely onto the task's physical action Box:
  ``physical = low + (a + 1) / 2 * (high - low)``. For PandaLift ``a = 0`` is zero TCP motion with the
  gripper half closed; ``a = [1, 1, 1, 1, 1]`` is the largest step (+2 cm in x, y, z, +0.15 rad yaw) with
  the gripper fully closed. :meth:`to_physical` / :meth:`from_physical` convert either way.
* Episodes: ``dones = terminated | truncated`` (long, ``(num_envs,)``); finished envs are reset in the same
  step and the returned observation is their next episode's first. ``extras["time_outs"]`` (bool,
  ``(num_envs,)``) is True where an episode ended only by the time limit, which rsl_rl bootstraps.
  ``episode_length_buf`` (int64, ``(num_envs,)``) is the vector env's own step counter, so a trainer that
  randomises it (``learn(init_at_random_ep_len=True)``) really shortens those first episodes.
* Logging: on steps where episodes end, ``extras["log"]`` holds their means: ``Episode/success``,
  ``Episode/length`` (control steps) and ``Episode_Reward/<term>`` (each named reward term summed over the
  episode, unscaled).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from robolearn.sim.mujoco_env import ActionError
from robolearn.sim.vector import MujocoVectorEnv, make_vec_env

POLICY_GROUP = "policy"


class RslRlVecEnv:
    """rsl_rl's ``VecEnv`` over a :class:`MujocoVectorEnv` (see the module docstring).

    Args:
        vec: the batched env (``make_vec_env(..., backend="threads")``); owned, closed by :meth:`close`.
        device: torch device of the returned tensors (the physics stays on the CPU).
        seed: seed of the first reset (env ``i`` gets ``seed + i``); None: ``make_vec_env``'s seed, if any.
    """

    def __init__(self, vec: MujocoVectorEnv, device: str | torch.device = "cpu", seed: int | None = None):
        if not isinstance(vec, MujocoVectorEnv):
            raise TypeError(f"RslRlVecEnv needs a MujocoVectorEnv (backend='threads'), "
                            f"got {type(vec).__name__}")
        if vec.max_episode_steps is None:
            raise ValueError("RslRlVecEnv needs a time limit: build the vector env with max_episode_steps")
        space = vec.single_action_space
        if len(space.shape) != 1 or not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise ValueError(f"RslRlVecEnv needs a 1-D action Box with finite bounds, got {space}")
        self.vec = vec
        self.device = torch.device(device)
        self.num_envs = vec.num_envs
        self.num_actions = int(space.shape[0])
        self.max_episode_length = int(vec.max_episode_steps)
        self._low = space.low.astype(np.float64)
        self._half_range = (space.high.astype(np.float64) - self._low) / 2.0
        self.obs_layout: dict[str, slice] = {}
        self._pixel_keys: list[str] = []
        start = 0
        for key, box in vec.single_observation_space.items():
            if key.startswith("pixels/"):
                self._pixel_keys.append(key)
            elif len(box.shape) <= 1:
                size = int(np.prod(box.shape))
                self.obs_layout[key] = slice(start, start + size)
                start += size
            else:
                raise ValueError(f"observation {key!r} of shape {box.shape} is neither a vector nor pixels")
        self.num_obs = start
        self.cfg: dict[str, Any] = {
            "env_id": vec.envs[0].spec_id,
            "num_envs": self.num_envs,
            "max_episode_length": self.max_episode_length,
            "action_low": space.low.tolist(),
            "action_high": space.high.tolist(),
            "obs_layout": {k: [s.start, s.stop] for k, s in self.obs_layout.items()},
        }
        self._episode_terms: dict[str, np.ndarray] = {}
        obs, _ = vec.reset(seed=seed)
        self._obs = self._to_tensordict(obs)

    # ----------------------------------------------------------------- rsl_rl VecEnv
    @property
    def episode_length_buf(self) -> torch.Tensor:
        """Control steps elapsed in each env's episode, int64 ``(num_envs,)``; shares the env's memory."""
        return torch.from_numpy(self.vec.episode_steps)

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        steps = torch.as_tensor(value).detach().to("cpu", torch.int64).numpy()
        if steps.shape != (self.num_envs,):
            raise ValueError(f"episode_length_buf must have shape ({self.num_envs},), got {steps.shape}")
        self.vec.episode_steps[:] = np.clip(steps, 0, self.max_episode_length - 1)

    def get_observations(self) -> TensorDict:
        """The current observations: ``{"policy": (num_envs, num_obs) float32, ...}``."""
        return self._obs

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Apply ``actions`` ``(num_envs, num_actions)`` in [-1, 1] (clipped) and step every env.

        Returns ``(obs, rewards (num_envs,) float32, dones (num_envs,) long, extras)``.
        """
        physical = self.to_physical(actions)
        lengths = self.vec.episode_steps + 1  # each env's episode length if it ends in this step
        obs, rewards, terminated, truncated, infos = self.vec.step(physical)
        self._obs = self._to_tensordict(obs)
        done = terminated | truncated
        extras: dict[str, Any] = {"time_outs": torch.from_numpy(truncated & ~terminated).to(self.device)}
        log = self._episode_log(infos, done, lengths)
        if log:
            extras["log"] = log
        return (
            self._obs,
            torch.from_numpy(rewards.astype(np.float32)).to(self.device),
            torch.from_numpy(done.astype(np.int64)).to(self.device),
            extras,
        )

    def close(self) -> None:
        self.vec.close()

    # ----------------------------------------------------------------- action scaling
    def to_physical(self, actions: torch.Tensor | np.ndarray) -> np.ndarray:
        """Unit actions ``(num_envs, num_actions)`` in [-1, 1] (clipped) -> physical units, float64."""
        if isinstance(actions, torch.Tensor):
            actions = actions.detach().to("cpu", torch.float64).numpy()
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (self.num_envs, self.num_actions):
            raise ActionError(f"rsl_rl adapter: actions have shape {a.shape}, expected "
                              f"({self.num_envs}, {self.num_actions})")
        if not np.isfinite(a).all():
            bad = np.flatnonzero(~np.isfinite(a).all(axis=1)).tolist()
            raise ActionError(f"rsl_rl adapter: actions of envs {bad} contain NaN or inf")
        return self._low + (np.clip(a, -1.0, 1.0) + 1.0) * self._half_range

    def from_physical(self, physical: np.ndarray) -> np.ndarray:
        """Physical actions ``(..., num_actions)`` -> unit actions (the inverse of :meth:`to_physical`)."""
        return (np.asarray(physical, np.float64) - self._low) / self._half_range - 1.0

    # ----------------------------------------------------------------- helpers
    def _to_tensordict(self, obs: dict[str, np.ndarray]) -> TensorDict:
        flat = np.empty((self.num_envs, self.num_obs), np.float32)
        for key, sl in self.obs_layout.items():
            flat[:, sl] = obs[key].reshape(self.num_envs, -1)
        groups = {POLICY_GROUP: torch.from_numpy(flat)}
        for key in self._pixel_keys:
            frames = torch.from_numpy(obs[key]).permute(0, 3, 1, 2).to(torch.float32) / 255.0
            groups[key.replace("/", "_")] = frames
        return TensorDict(groups, batch_size=[self.num_envs], device=self.device)

    def _episode_log(self, infos: dict[str, Any], done: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
        """Accumulate the per-episode reward terms; the means over the episodes that ended this step."""
        final = infos.get("final_info", {})
        final_mask = infos.get("_final_info", np.zeros(self.num_envs, bool))
        keys = [k for k in {**infos, **final} if k.startswith("reward/")]
        for key in keys:
            step = np.zeros(self.num_envs)
            if key in infos:
                step = np.where(infos[f"_{key}"], infos[key], step)
            if key in final:
                step = np.where(final_mask & final[f"_{key}"], final[key], step)
            total = self._episode_terms.setdefault(key, np.zeros(self.num_envs))
            total += step
        if not done.any():
            return {}
        log: dict[str, float] = {}
        if "is_success" in final:
            log["Episode/success"] = float(np.mean(final["is_success"][done]))
        log["Episode/length"] = float(np.mean(lengths[done]))
        for key, total in self._episode_terms.items():
            log[f"Episode_Reward/{key.removeprefix('reward/')}"] = float(np.mean(total[done]))
            total[done] = 0.0
        return log


def make_rsl_rl_env(
    env_id: str,
    num_envs: int,
    seed: int | None = 0,
    device: str | torch.device = "cpu",
    env_kwargs: dict[str, Any] | None = None,
    num_threads: int | None = None,
    max_episode_steps: int | None = None,
) -> RslRlVecEnv:
    """``RslRlVecEnv(make_vec_env(env_id, num_envs, ...))``: a robolearn task ready for rsl_rl's runners."""
    vec = make_vec_env(env_id, num_envs, seed=seed, env_kwargs=env_kwargs, backend="threads",
                       num_threads=num_threads, max_episode_steps=max_episode_steps)
    return RslRlVecEnv(vec, device=device)
