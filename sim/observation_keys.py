"""Which observation keys a policy may read: proprioception, cameras and the simulator's privileged state.

A task's observation holds what the robot measures itself (joint encoders, the gripper, forward kinematics:
:meth:`~robolearn.sim.mujoco_env.MujocoTaskEnv.proprioception_keys`), camera frames (``pixels/<camera>``) and,
in simulation only, *privileged* state: object poses and goals read from the simulator, which no real robot
has. :func:`privileged_keys` names the latter; :class:`SelectObservationKeys` hands a learner only the keys it
is allowed (a vision policy refined without privileged state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

PIXEL_PREFIX = "pixels/"
"""Camera observations are ``pixels/<camera>``."""


def privileged_keys(keys: Iterable[str], proprioception: Sequence[str]) -> list[str]:
    """The keys of ``keys`` that are neither proprioception nor a camera frame: simulator state a deployed
    policy cannot have (sorted)."""
    return sorted(k for k in keys if k not in proprioception and not k.startswith(PIXEL_PREFIX))


class SelectObservationKeys(gym.vector.VectorWrapper):
    """A same-step-autoreset vector env whose observations hold only ``keys`` (the final observations in
    ``infos["final_obs"]`` too); every other key never leaves the wrapped env.

    Args:
        env: the vector env (dict observations).
        keys: the keys to keep, each in ``env``'s observation space; a ``pixels/<camera>`` key needs the task's
            ``pixels`` setting to render that camera.
    """

    def __init__(self, env: gym.vector.VectorEnv, keys: Sequence[str]) -> None:
        super().__init__(env)
        spaces = env.single_observation_space.spaces
        missing = [k for k in keys if k not in spaces]
        if missing:
            raise ValueError(f"obs_keys {missing} are not observations of this env (it has {sorted(spaces)}); "
                             f"fix obs_keys, or render the camera with the task's pixels setting")
        self.keys = list(keys)
        self.single_observation_space = gym.spaces.Dict({k: spaces[k] for k in self.keys})
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def _select(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        return {k: obs[k] for k in self.keys}

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._select(obs), info

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        if "final_obs" in info:
            final = np.array(info["final_obs"], dtype=object, copy=True)
            for i, ended in enumerate(final):
                if ended is not None:
                    final[i] = self._select(ended)
            info = {**info, "final_obs": final}
        return self._select(obs), reward, terminated, truncated, info
