"""A zero-initialised residual reproduces the base policy exactly; the refined policy saves and loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.policy_factory import load_refined, make_policy
from robolearn.refine.config import RefineConfig
from robolearn.refine.layout import refined_method
from robolearn.refine.residual import PLAN_KEY, ResidualPolicy, ResidualVecEnv
from robolearn.refine.saved import save_refined
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
    # the ROS policy node reads the method without torch, to choose where the policy runs
    assert refined_method(policy_dir) == "residual" and refined_method(tmp_path) is None
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


def test_per_dimension_scales_bound_each_dimension_and_survive_save_and_load(tmp_path):
    """A residual may override the gripper fully while the arm stays within 0.2: each dimension's correction
    is bounded by its own scale in the wrapper, in the critic's action and in the saved policy."""
    venv = make_vec_env(ENV, 2, seed=0)
    scales = [0.2, 0.2, 0.2, 0.2, 1.0]
    env = ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), scale=scales)
    obs = env.reset(seed=0)
    push = np.full((2, 5), -1.0, np.float32)
    _, _, _, _, info = env.step(push)
    np.testing.assert_allclose(info["critic_action"] - obs["base_action"],
                               np.clip(obs["base_action"] - scales, -1, 1) - obs["base_action"], atol=1e-6)
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[16]), env.obs_shapes, env.action_dim,
                               critic_action_fn=env.critic_action_fn)
    critic_action = learner.critic_action_fn({k: torch.as_tensor(v) for k, v in obs.items()}, torch.as_tensor(push))
    np.testing.assert_allclose(critic_action.numpy(), info["critic_action"], atol=1e-6)
    with torch.no_grad():  # an actor that always pushes every dimension to -1
        learner.actor.net[-1].weight.zero_()
        learner.actor.net[-1].bias.fill_(-20.0)
    policy_dir = save_refined(tmp_path / "policy", "residual", "zero", ENV, learner.actor, env.obs_shapes, [16],
                              {"scale": scales})
    refined = load_refined(policy_dir)
    raw, _ = venv.reset(seed=0)
    half = (venv.single_action_space.high - venv.single_action_space.low) / 2
    base = np.clip(make_policy("zero", ENV, venv.single_action_space).act(raw)[:, 0], venv.single_action_space.low,
                   venv.single_action_space.high)
    np.testing.assert_allclose(refined.act(raw)[:, 0], np.clip(base - np.array(scales) * half,
                                                               venv.single_action_space.low,
                                                               venv.single_action_space.high), atol=1e-5)
    with pytest.raises(ValueError, match="one per action dimension"):
        ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), scale=[0.2, 0.2])
    with pytest.raises(ValueError, match="scale must be in"):
        ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), scale=[0.2, 0.2, 0.2, 0.0, 1.0])


class NumberedChunks:
    """A base whose chunk ``c`` (1, 2, ...) is ``(B, 4, 5)`` with action ``i`` = ``0.1 c + 0.01 i``; counts calls."""

    def __init__(self) -> None:
        self.acts = self.observed = 0

    noise_shape = None

    def act(self, obs, noise=None):
        self.acts += 1
        values = 0.1 * self.acts + 0.01 * np.arange(4, dtype=np.float32)
        return np.broadcast_to(values[None, :, None], (1, 4, 5)).astype(np.float32).copy()

    def observe(self, obs) -> None:
        self.observed += 1

    def reset(self, env_ids=None) -> None:
        pass


def test_prepare_moves_the_base_replan_off_the_next_call():
    """With prepare() after each call (the ROS runner), the call for a chunk's last action leaves the base's
    replan to prepare(), and the next call starts at the new chunk's second action (its first is for the step
    just taken); the base sees every observation once. Without prepare() nothing changes."""
    venv = make_vec_env(ENV, 1, seed=0)
    base = NumberedChunks()
    env = ResidualVecEnv(venv, base, 0.1)
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[32], zero_init_actor=True), env.obs_shapes,
                               env.action_dim)
    obs, _ = venv.reset(seed=0)
    plain = ResidualPolicy(NumberedChunks(), learner.actor, venv.single_action_space, 0.1)
    policy = ResidualPolicy(base, learner.actor, venv.single_action_space, 0.1)
    executed, plain_executed, on_path = [], [], []
    for _ in range(10):
        before = base.acts
        executed.append(round(float(policy.act(obs)[0, 0, -1]), 4))  # the gripper: 0..1
        on_path.append(base.acts - before)
        policy.prepare(obs)
        plain_executed.append(round(float(plain.act(obs)[0, 0, -1]), 4))
    assert plain_executed == [0.1, 0.11, 0.12, 0.13, 0.2, 0.21, 0.22, 0.23, 0.3, 0.31]  # unchanged without prepare
    # chunk 1 from the first call; from then on each chunk is computed in prepare() and used from its action 1
    assert executed == [0.1, 0.11, 0.12, 0.13, 0.21, 0.22, 0.23, 0.31, 0.32, 0.33]
    assert on_path == [1] + [0] * 9  # the base never replans inside act() once prepare() is in use
    assert base.acts + base.observed == 10  # every observation reached the base exactly once

    # a caller that stops calling prepare() loses nothing: the next call hands the base the deferred observation
    base2 = NumberedChunks()
    policy2 = ResidualPolicy(base2, learner.actor, venv.single_action_space, 0.1)
    policy2.act(obs)
    policy2.prepare(obs)
    for _ in range(3):
        policy2.act(obs)  # the third is the chunk's last action: its observation is deferred
    policy2.act(obs)  # no prepare(): the base observes the deferred one, then replans on this call
    assert base2.acts == 2 and base2.observed == 3


def test_base_plan_shows_the_rest_of_the_chunk_and_the_saved_policy_sees_the_same():
    """With plan_steps=3 the learner sees the base chunk's next 3 actions (normalized, flag 1), zero rows past
    the chunk's end; a policy with the same actor, rebuilt from its saved files, executes what the wrapper did."""
    venv, ref_venv = make_vec_env(ENV, 1, seed=0), make_vec_env(ENV, 1, seed=0)
    env = ResidualVecEnv(venv, NumberedChunks(), 0.1, plan_steps=3)
    assert env.obs_shapes[PLAN_KEY] == (3 * 6,)
    space = venv.single_action_space

    def normalized(value: float) -> np.ndarray:  # every dimension of NumberedChunks' action holds the same value
        return np.clip(env.scaler.normalize(np.clip(np.full(5, value, np.float32), space.low, space.high)), -1, 1)

    torch.manual_seed(0)  # a random (not zero-initialised) actor, so its output depends on the plan
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[32]), env.obs_shapes, env.action_dim,
                               critic_action_fn=env.critic_action_fn)
    policy = ResidualPolicy(NumberedChunks(), learner.actor, space, 0.1, plan_steps=3)
    obs, (raw, _) = env.reset(seed=0), ref_venv.reset(seed=0)
    for t in range(6):
        chunk, index = 1 + t // 4, t % 4
        plan = obs[PLAN_KEY].reshape(3, 6)
        for row in range(3):
            if index + 1 + row < 4:
                np.testing.assert_allclose(plan[row, :5], normalized(0.1 * chunk + 0.01 * (index + 1 + row)), atol=1e-6)
                assert plan[row, 5] == 1.0
            else:
                assert not plan[row].any()
        obs, _, _, _, info = env.step(learner.act(obs, deterministic=True))
        executed = policy.act(raw)[:, 0]
        np.testing.assert_allclose(executed, info["executed"], atol=1e-6)
        raw, *_ = ref_venv.step(executed)
    blind = ResidualPolicy(NumberedChunks(), learner.actor, space, 0.1)  # no plan: the actor's input is incomplete
    with pytest.raises(KeyError, match=PLAN_KEY):
        blind.act(raw)


def test_plan_steps_survive_save_and_load_and_bad_values_are_refused(tmp_path):
    venv = make_vec_env(ENV, 1, seed=0)
    env = ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), 0.1, plan_steps=2)
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[16], zero_init_actor=True), env.obs_shapes,
                               env.action_dim, critic_action_fn=env.critic_action_fn)
    policy_dir = save_refined(tmp_path / "policy", "residual", "zero", ENV, learner.actor, env.obs_shapes, [16],
                              {"scale": 0.1, "plan_steps": 2})
    refined = load_refined(policy_dir)
    assert refined.plan_steps == 2
    raw, _ = venv.reset(seed=0)
    np.testing.assert_array_equal(refined.act(raw)[:, 0], np.clip(make_policy("zero", ENV, venv.single_action_space)
                                                                  .act(raw)[:, 0], venv.single_action_space.low,
                                                                  venv.single_action_space.high))
    with pytest.raises(ValueError, match="plan_steps must be >= 0"):
        ResidualVecEnv(venv, make_policy("zero", ENV, venv.single_action_space), 0.1, plan_steps=-1)
    with pytest.raises(ValueError, match="plan_steps must be >= 0"):
        RefineConfig(params={"plan_steps": -1}).validate()


def test_a_residual_over_a_zero_noise_base_corrects_the_deterministic_chunk():
    """``base_noise: zero``: the wrapper and the saved policy both run the generative base from zero noise (the
    base variant the report ranks best on PandaLift); a deterministic base ignores it; bad values are refused."""
    from test_refine_training import TinyGenerativePolicy

    from robolearn.refine.methods import METHODS, ResidualParams
    from robolearn.refine.noise_steering import ZeroNoisePolicy

    venv = make_vec_env(ENV, 2, seed=0)
    method = METHODS["residual"]
    params = ResidualParams.from_dict({"scale": 0.1, "base_noise": "zero"})
    env = method.wrap(venv, TinyGenerativePolicy(), params, seed=0)
    assert isinstance(env.base, ZeroNoisePolicy)
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[16], zero_init_actor=True), env.obs_shapes,
                               env.action_dim, critic_action_fn=env.critic_action_fn)
    refined = method.policy(TinyGenerativePolicy(), learner.actor, venv.single_action_space, params)
    raw, _ = venv.reset(seed=0)
    expected = np.clip(ZeroNoisePolicy(TinyGenerativePolicy()).act(raw)[:, 0], venv.single_action_space.low,
                       venv.single_action_space.high)
    np.testing.assert_allclose(refined.act(raw)[:, 0], expected, atol=1e-6)
    deterministic = make_policy("zero", ENV, venv.single_action_space)
    assert method.wrap(venv, deterministic, params, seed=0).base is deterministic
    with pytest.raises(ValueError, match="base_noise must be one of random, zero"):
        RefineConfig(params={"base_noise": "mode"}).validate()
    venv.close()
