"""A refinement method in one file: registered in a test-local copy of METHODS, it runs through the real
refinement loop and its saved policy loads through ``robolearn.policy_factory.load_policy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from robolearn.policy_factory import load_policy
from robolearn.refine.common import ActionScaler, episode_ends, torch_obs
from robolearn.refine.config import RefineConfig
from robolearn.refine.loop import train
from robolearn.refine.methods import METHODS, MethodParams, RefineMethod
from robolearn.refine.saved import read_refined
from robolearn.rl.learner import LearnerConfig
from robolearn.wiring import refine_sources

ENV = "robolearn/PandaLift-v0"


@dataclass
class NudgeParams(MethodParams):
    """Settings of the toy method."""

    gain: float = 0.05
    """Largest nudge of the base's first action, as a fraction of the normalized action range."""

    def validate(self) -> None:
        if not 0 < self.gain <= 1:
            raise ValueError(f"gain must be in (0, 1], got {self.gain}")


class NudgeVecEnv:
    """The base's first action of a fresh chunk every step, nudged by ``gain * a`` (normalized units)."""

    def __init__(self, venv: Any, base: Any, gain: float) -> None:
        self.venv, self.base, self.gain = venv, base, gain
        self.num_envs = venv.num_envs
        self.scaler = ActionScaler(venv.single_action_space)
        self.action_dim = self.critic_action_dim = int(np.prod(venv.single_action_space.shape))
        self.obs_shapes = {k: tuple(s.shape) for k, s in venv.single_observation_space.spaces.items()}
        self.critic_action_fn = None
        self._obs: dict[str, np.ndarray] = {}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        obs, _ = self.venv.reset(seed=seed)
        self.base.reset()
        self._obs = {k: np.asarray(v) for k, v in obs.items()}
        return dict(self._obs)

    def step(self, action: np.ndarray, override: np.ndarray | None = None) -> tuple:
        base = self.scaler.normalize(np.asarray(self.base.act(self._obs), np.float32)[:, 0])
        executed = np.clip(base + self.gain * np.clip(action, -1, 1), -1, 1).astype(np.float32)
        if override is not None:
            executed = np.clip(self.scaler.normalize(override), -1, 1)
        obs, reward, term, trunc, infos = self.venv.step(self.scaler.unnormalize(executed))
        done, final, success = episode_ends(obs, term, trunc, infos)
        if done.any():
            self.base.reset(np.nonzero(done)[0])
        self._obs = {k: np.asarray(v) for k, v in obs.items()}
        info = {"final_obs": final, "critic_action": executed, "is_success": success}
        return dict(self._obs), reward.astype(np.float32), term, trunc, info

    def close(self) -> None:
        self.venv.close()


class NudgePolicy:
    """Base + the saved nudge actor, as a Policy: ``(B, 1, Da)`` physical actions."""

    def __init__(self, base: Any, actor: Any, action_space: Any, gain: float) -> None:
        self.base, self.actor, self.gain, self.scaler = base, actor, gain, ActionScaler(action_space)
        self.noise_shape = None

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], noise: np.ndarray | None = None) -> np.ndarray:
        base = self.scaler.normalize(np.asarray(self.base.act(obs), np.float32)[:, 0])
        nudge = self.actor.mode(torch_obs(obs)).numpy()
        return self.scaler.unnormalize(np.clip(base + self.gain * nudge, -1, 1))[:, None]

    def reset(self, env_ids: Any = None) -> None:
        self.base.reset(env_ids)


class NudgeMethod(RefineMethod):
    params_type = NudgeParams
    zero_init_actor = True

    def wrap(self, venv: Any, base: Any, params: NudgeParams, seed: int) -> NudgeVecEnv:
        return NudgeVecEnv(venv, base, params.gain)

    def policy(self, base: Any, actor: Any, action_space: Any, params: NudgeParams) -> NudgePolicy:
        return NudgePolicy(base, actor, action_space, params.gain)


def test_a_method_in_one_file_trains_saves_and_loads(tmp_path) -> None:
    methods = {**METHODS, "nudge": NudgeMethod()}
    cfg = RefineConfig(method="nudge", base="zero", env_id=ENV, params={"gain": 0.1}, num_envs=2,
                       total_env_steps=200, random_steps=50, critic_warmup_updates=5, updates_per_env_step=0.25,
                       eval_every=0, eval_episodes=2, eval_envs=2, checkpoint_every=0, replay_capacity=2_000,
                       demos="expert:noise=0", demo_episodes=1,
                       learner=LearnerConfig(algo="td3", hidden=[16], batch_size=16, num_critics=2))
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False, methods=methods)
    assert result.env_steps == 200 and result.updates > 0 and len(result.evals) == 2
    assert read_refined(tmp_path / "policy").params == {"gain": 0.1}
    policy = load_policy(tmp_path / "policy", ENV, methods=methods)
    assert isinstance(policy, NudgePolicy) and policy.gain == 0.1
    obs = {k: np.repeat(v[None], 3, 0) for k, v in _first_obs().items()}
    action = policy.act(obs)
    assert action.shape == (3, 1, 5) and np.isfinite(action).all()
    with pytest.raises(ValueError, match="unknown refinement method 'nudge'"):
        load_policy(tmp_path / "policy", ENV)  # the global METHODS does not know it


def test_a_methods_params_are_checked_by_name_when_the_config_is_checked() -> None:
    methods = {**METHODS, "nudge": NudgeMethod()}
    with pytest.raises(ValueError, match="unknown key 'gian' for NudgeParams; allowed keys: gain"):
        RefineConfig(method="nudge", params={"gian": 0.1}).validate(methods)
    with pytest.raises(ValueError, match="gain must be in"):
        RefineConfig(method="nudge", params={"gain": 2.0}).validate(methods)
    with pytest.raises(ValueError, match="unknown refinement method 'nudge'"):
        RefineConfig(method="nudge").validate()


def _first_obs() -> dict[str, np.ndarray]:
    from robolearn.sim.registry import gym_make

    env = gym_make(ENV)
    obs, _ = env.reset(seed=0)
    env.close()
    return obs
