"""Every registered env: gymnasium's checker, shapes/dtypes/finiteness, bad input, time limits."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.sim.mujoco_env import ActionError
from robolearn.sim.registry import TASKS

ENV_IDS = list(TASKS)


@pytest.fixture(scope="module", params=ENV_IDS)
def env(request):
    env = gym.make(request.param)
    yield env
    env.close()


def test_gymnasium_env_checker(env):
    check_env(env.unwrapped, skip_render_check=True)


def test_reset_step_shapes_dtypes_finite(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        for key, value in obs.items():
            space = env.observation_space[key]
            assert value.shape == space.shape and value.dtype == np.float32, key
            assert np.all(np.isfinite(value)), key
        assert np.isfinite(reward) and isinstance(terminated, bool) and isinstance(truncated, bool)
        assert "is_success" in info and "reward/success" in info


def test_same_seed_same_episode(env):
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    c, _ = env.reset(seed=8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_bad_actions_raise_clear_errors(env):
    env.reset(seed=0)
    dim = env.action_space.shape[0]
    with pytest.raises(ActionError, match="shape"):
        env.step(np.zeros(dim + 1))
    bad = np.zeros(dim)
    bad[0] = np.nan
    with pytest.raises(ActionError, match="NaN or inf"):
        env.step(bad)
    bad[0] = np.inf
    with pytest.raises(ActionError, match="NaN or inf"):
        env.step(bad)


def test_out_of_range_actions_are_clipped_and_counted(env):
    env.reset(seed=0)
    high = env.action_space.high
    _, _, _, _, info = env.step(high * 10)
    assert info["action_clipped"] == len(high) - int(np.sum(high == 0))
    _, _, _, _, info2 = env.step(np.zeros_like(high))
    assert info2["action_clipped"] == 0 and info2["action_clip_count"] == info["action_clip_count"]


def test_time_limit_truncates_not_terminates():
    env = gym.make("robolearn/PandaLift-v0", max_episode_steps=5)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    for _ in range(4):
        assert env.step(zero)[3] is False
    _, _, terminated, truncated, _ = env.step(zero)
    assert truncated and not terminated


def test_task_config_errors_name_the_key():
    from robolearn.core.config import ConfigError

    with pytest.raises(ConfigError, match="unknown key 'control_rate'.*allowed keys"):
        gym.make("robolearn/PandaLift-v0", control_rate=10)


def test_joint_space_action_option():
    env = gym.make("robolearn/PandaLift-v0", action_mode="joint_delta")
    assert env.action_space.shape == (8,)
    obs, _ = env.reset(seed=0)
    q0 = obs["joint_pos"].copy()
    action = np.zeros(8, np.float32)
    action[0] = 0.1
    for _ in range(5):
        obs, *_ = env.step(action)
    assert obs["joint_pos"][0] - q0[0] > 0.2
