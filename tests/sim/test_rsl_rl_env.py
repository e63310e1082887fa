"""The rsl_rl VecEnv adapter: shapes, dtypes, action scaling, time-outs, and rsl_rl's real PPO runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from robolearn.sim.mujoco_env import ActionError
from robolearn.sim.rsl_rl_env import RslRlVecEnv, make_rsl_rl_env
from robolearn.sim.vector import make_vec_env

LIFT = "robolearn/PandaLift-v0"
OBS_DIM = 7 + 7 + 3 + 4 + 1 + 3 + 4 + 3 + 3  # PandaLift's vector observations


@pytest.fixture
def env():
    adapter = make_rsl_rl_env(LIFT, 3, seed=0, num_threads=2, max_episode_steps=5)
    yield adapter
    adapter.close()


def test_attributes_and_observation_shapes(env):
    assert (env.num_envs, env.num_actions, env.max_episode_length, env.num_obs) == (3, 5, 5, OBS_DIM)
    assert env.device == torch.device("cpu") and isinstance(env.cfg, dict)
    obs = env.get_observations()
    assert isinstance(obs, TensorDict) and obs.batch_size == torch.Size([3])
    assert obs["policy"].shape == (3, OBS_DIM) and obs["policy"].dtype == torch.float32
    buf = env.episode_length_buf
    assert buf.shape == (3,) and buf.dtype == torch.int64 and (buf == 0).all()
    # the layout puts each observation key where the flat vector has it
    tcp = np.stack([e.tcp_pos() for e in env.vec.envs]).astype(np.float32)
    np.testing.assert_array_equal(obs["policy"][:, env.obs_layout["ee_pos"]].numpy(), tcp)


def test_step_shapes_dtypes_and_time_outs(env):
    zeros = torch.zeros(3, 5)
    for k in range(1, 6):
        obs, rewards, dones, extras = env.step(zeros)
        assert obs["policy"].shape == (3, OBS_DIM) and torch.isfinite(obs["policy"]).all()
        assert rewards.shape == (3,) and rewards.dtype == torch.float32
        assert dones.shape == (3,) and dones.dtype == torch.int64
        time_outs = extras["time_outs"]
        assert time_outs.shape == (3,) and time_outs.dtype == torch.bool
        if k < 5:
            assert not dones.any() and not time_outs.any() and "log" not in extras
            assert (env.episode_length_buf == k).all()
    # the 5th step hits the time limit: done, a time-out, logged, and the counters restart
    assert dones.all() and time_outs.all()
    assert extras["log"]["Episode/length"] == 5.0
    assert extras["log"]["Episode/success"] == 0.0
    assert "Episode_Reward/reach" in extras["log"] and extras["log"]["Episode_Reward/reach"] < 0
    assert (env.episode_length_buf == 0).all()


def test_episode_length_buf_assignment_drives_the_time_limit(env):
    env.episode_length_buf = torch.tensor([4, 0, 2])
    _, _, dones, extras = env.step(torch.zeros(3, 5))
    assert dones.tolist() == [1, 0, 0] and extras["time_outs"].tolist() == [True, False, False]
    assert env.episode_length_buf.tolist() == [0, 1, 3]
    env.episode_length_buf[1] = 4  # in-place writes reach the env too
    _, _, dones, _ = env.step(torch.zeros(3, 5))
    assert dones.tolist() == [0, 1, 0]


def test_action_scaling_maps_unit_box_onto_physical_box(env):
    space = env.vec.single_action_space
    lo, hi = space.low.astype(np.float64), space.high.astype(np.float64)
    unit = torch.tensor([[-1.0] * 5, [1.0] * 5, [0.0] * 5])
    np.testing.assert_allclose(env.to_physical(unit), np.stack([lo, hi, (lo + hi) / 2]), rtol=1e-6)
    np.testing.assert_allclose(env.to_physical(torch.full((3, 5), 7.0)), np.stack([hi] * 3), rtol=1e-6)
    phys = np.stack([lo, hi, (lo + hi) / 2])
    np.testing.assert_allclose(env.from_physical(phys), unit.numpy(), atol=1e-6)


def test_bad_actions_raise_clear_errors(env):
    with pytest.raises(ActionError, match=r"shape \(3, 4\), expected \(3, 5\)"):
        env.step(torch.zeros(3, 4))
    bad = torch.zeros(3, 5)
    bad[2, 1] = float("nan")
    with pytest.raises(ActionError, match=r"envs \[2\] contain NaN or inf"):
        env.step(bad)


def test_rejects_sync_backend():
    vec = make_vec_env(LIFT, 2, backend="sync")
    with pytest.raises(TypeError, match="needs a MujocoVectorEnv"):
        RslRlVecEnv(vec)
    vec.close()


def _ppo_cfg() -> dict:
    mlp = {"class_name": "MLPModel", "hidden_dims": [32, 32], "activation": "elu"}
    return {
        "num_steps_per_env": 8,
        "save_interval": 50,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "actor": {**mlp, "obs_normalization": True,
                  "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 0.5}},
        "critic": {**mlp, "obs_normalization": True},
        "algorithm": {"class_name": "PPO", "num_learning_epochs": 2, "num_mini_batches": 2,
                      "learning_rate": 1e-3, "schedule": "adaptive", "desired_kl": 0.01},
    }


def test_rsl_rl_ppo_runner_trains_through_the_adapter():
    runners = pytest.importorskip("rsl_rl.runners", reason="rsl-rl-lib is not installed")
    torch.manual_seed(0)
    env = make_rsl_rl_env(LIFT, 4, seed=0, num_threads=2, max_episode_steps=10)
    try:
        runner = runners.OnPolicyRunner(env, _ppo_cfg(), log_dir=None, device="cpu")
        before = [p.detach().clone() for p in runner.alg.actor.parameters()]
        runner.learn(num_learning_iterations=2, init_at_random_ep_len=True)
        after = list(runner.alg.actor.parameters())
        assert runner.current_learning_iteration == 1
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        policy = runner.get_inference_policy()
        actions = policy(env.get_observations())
        assert actions.shape == (4, 5) and torch.isfinite(actions).all()
    finally:
        env.close()
