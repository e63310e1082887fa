"""A zero-initialised residual reproduces the base policy exactly; the refined policy saves and loads."""

from __future__ import annotations

import numpy as np
import pytest

import robolearn  # noqa: F401
from robolearn.policy_factory import make_policy
from robolearn.refine.common import load_refined, save_refined
from robolearn.refine.residual import ResidualPolicy, ResidualVecEnv
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.sim.vector import make_vec_env

ENV = "robolearn/PandaLift-v0"


def test_zero_init_residual_executes_base_actions_exactly(tmp_path):
    venv = make_vec_env(ENV, 2, seed=3)
    env = ResidualVecEnv(venv, make_policy("expert", ENV, venv.single_action_space, noise=0.5, seed=1), 0.1)
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[32], zero_init_actor=True), env.obs_shapes,
                               env.action_dim, critic_action_fn=env.critic_action_fn)
    reference = make_policy("expert", ENV, venv.single_action_space, noise=0.5, seed=1)
    ref_env = make_vec_env(ENV, 2, seed=3)
    obs, (ref_obs, _) = env.reset(seed=3), ref_env.reset(seed=3)
    reference.reset()  # the wrapper resets its base at reset(); the noisy expert redraws its episode noise
    for _ in range(30):
        residual = learner.act(obs, deterministic=True)
        assert np.all(residual == 0.0)
        base_action = reference.act(ref_obs)[:, 0]
        obs, _, term, trunc, info = env.step(residual)
        np.testing.assert_array_equal(info["executed"], np.clip(base_action, venv.single_action_space.low,
                                                                venv.single_action_space.high))
        ref_obs, *_ = ref_env.step(base_action)
        np.testing.assert_array_equal(obs["ee_pos"], ref_obs["ee_pos"])
    policy_dir = save_refined(tmp_path / "policy", "residual", "expert:noise=0", ENV, learner.actor,
                              env.obs_shapes, [32], {"scale": 0.1})
    refined = load_refined(policy_dir)
    assert isinstance(refined, ResidualPolicy)
    base = make_policy("expert", ENV, venv.single_action_space, noise=0.0, seed=0)
    np.testing.assert_array_equal(refined.act(ref_obs), np.clip(base.act(ref_obs), venv.single_action_space.low,
                                                                 venv.single_action_space.high))


def test_residual_correction_is_bounded_by_scale():
    venv = make_vec_env(ENV, 2, seed=0)
    env = ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), scale=0.1)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones((2, 5), np.float32) * 5)
    assert np.abs(info["critic_action"] - env._base_norm).max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="scale"):
        ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), scale=0.0)
