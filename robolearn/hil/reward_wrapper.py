"""HIL-SERL's classifier reward: a learned success classifier replaces the env's reward and ends episodes.

:class:`ClassifierRewardVecEnv` wraps a same-step-autoreset vector env (``B`` envs). After every step it
classifies the observation that followed the action (``info["final_obs"]`` where the env's episode ended)
and sets, per env, ``reward = 1.0 if p >= threshold else 0.0`` and ``terminated |= p >= threshold``; an env
the classifier ends is reset in the same call, as the env's own ends are (its last observation and info in
``final_obs`` / ``final_info``). The env's own ``is_success`` stays in the infos, so a run still reports true
success; ``classifier_prob`` ``(B,)`` is added. The env's own terminations and time limits still end
episodes (with reward 0 unless the classifier fires).

A classifier trained on camera frames gets them from the env: :func:`make_classifier_vec_env` renders its
``pixels/<camera>`` keys (as ``robolearn collect --camera`` records them) and hides them from the policy's
observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from robolearn.hil.reward_classifier import SuccessClassifier
from robolearn.rl.networks import is_pixel_key


def _env_info(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Env ``i``'s entries of batched vector-env ``infos`` (without the final_obs / final_info of an autoreset)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        if isinstance(value, Mapping):
            out[key] = _env_info(value, i)
        elif infos.get(f"_{key}", np.ones(i + 1, bool))[i]:
            out[key] = value[i]
    return out


class ClassifierRewardVecEnv(gym.vector.VectorWrapper):
    """Reward and success-termination from ``classifier`` (see the module docstring).

    ``hidden_keys`` are observation keys the classifier needs but the policy must not see (removed from
    the returned observations and observation space).
    """

    def __init__(self, env: gym.vector.VectorEnv, classifier: SuccessClassifier, threshold: float = 0.5,
                 hidden_keys: Sequence[str] = ()) -> None:
        super().__init__(env)
        if not 0 < threshold <= 1:
            raise ValueError(f"classifier threshold must be in (0, 1], got {threshold}")
        spaces = env.single_observation_space.spaces
        missing = [k for k in classifier.keys if k not in spaces]
        if missing:
            raise KeyError(f"the env's observation has no {missing}, which the success classifier "
                           f"{classifier.path} was trained on (the env has {sorted(spaces)})")
        self.classifier, self.threshold, self.hidden = classifier, float(threshold), tuple(hidden_keys)
        if self.hidden:
            self.single_observation_space = gym.spaces.Dict({k: s for k, s in spaces.items() if k not in self.hidden})
            self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _visible(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v for k, v in obs.items() if k not in self.hidden}

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._visible(obs), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, _, terminated, truncated, infos = self.env.step(actions)
        done = np.logical_or(terminated, truncated)
        seen = {k: np.array(obs[k], copy=True) for k in self.classifier.keys}
        for i in np.flatnonzero(done):
            for k in seen:
                seen[k][i] = infos["final_obs"][i][k]
        prob = self.classifier.predict(seen)
        success = prob >= self.threshold
        ended = success & ~done
        if ended.any():
            finals = {int(i): ({k: np.array(v[i], copy=True) for k, v in obs.items()}, _env_info(infos, i))
                      for i in np.flatnonzero(ended)}
            obs, reset_infos = self.env.reset(options={"reset_mask": ended})
            for i, (final_obs, final_info) in finals.items():
                infos = self._add_info(infos, {"final_obs": final_obs, "final_info": final_info}, i)
                infos = self._add_info(infos, _env_info(reset_infos, i), i)
        infos["classifier_prob"] = prob
        reward = success.astype(np.float32)
        return self._visible(obs), reward, terminated | success, truncated & ~success, infos


def make_classifier_vec_env(make_env: Callable[[int, int | None, dict[str, Any] | None], gym.vector.VectorEnv],
                            num_envs: int, classifier: str, threshold: float, seed: int | None = None,
                            device: str = "cpu") -> ClassifierRewardVecEnv:
    """``num_envs`` envs from ``make_env(num_envs, seed, env_kwargs)`` rewarded by the classifier saved at
    ``classifier`` (run on ``device``, a device setting).

    Its ``pixels/<camera>`` keys are rendered by the env with the settings of ``robolearn collect --camera``
    (visual geoms, anti-aliased: the frames it was trained on) and hidden from the policy.
    """
    clf = SuccessClassifier.load(classifier, device)
    pixels = {k: s for k, s in clf.obs_shapes.items() if is_pixel_key(k, s)}
    kwargs: dict[str, Any] = {}
    if pixels:
        sizes = set(pixels.values())
        if len(sizes) > 1:
            raise ValueError(f"the classifier's cameras have different image sizes {sorted(sizes)}; an env renders "
                             "one size")
        (height, width, _), = sizes
        kwargs["pixels"] = {"cameras": [k.split("/", 1)[1] for k in pixels], "width": width, "height": height,
                            "geoms": "visual", "antialias": True}
    venv = make_env(num_envs, seed, kwargs)
    return ClassifierRewardVecEnv(venv, clf, threshold, hidden_keys=list(pixels))
