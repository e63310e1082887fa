"""Scripted experts solve their tasks; noise makes them imperfect but still competent."""

import gymnasium as gym
import numpy as np
import pytest

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.policy_factory import make_policy
from robolearn.rollout import run_episode
from robolearn.sim.registry import TASKS


@pytest.mark.parametrize("env_id", list(TASKS))
def test_clean_expert_succeeds(env_id):
    env = gym.make(env_id)
    expert = make_policy("expert", env_id, env.action_space, noise=0.0, seed=0)
    results = [run_episode(env, expert, seed=100 + i) for i in range(4)]
    assert all(r["success"] for r in results), results


def test_noisy_expert_differs_and_is_seeded():
    env = gym.make("robolearn/PandaLift-v0")
    obs, _ = env.reset(seed=0)
    batch = {k: v[None] for k, v in obs.items()}
    clean = make_policy("expert", "robolearn/PandaLift-v0", env.action_space, noise=0.0).act(batch)
    noisy_a = make_policy("expert", "robolearn/PandaLift-v0", env.action_space, noise=0.5, seed=1).act(batch)
    noisy_b = make_policy("expert", "robolearn/PandaLift-v0", env.action_space, noise=0.5, seed=1).act(batch)
    assert clean.shape == (1, 1, 5)
    assert not np.allclose(clean, noisy_a) and np.array_equal(noisy_a, noisy_b)


def test_named_policy_errors():
    env = gym.make("robolearn/PandaLift-v0")
    with pytest.raises(ValueError, match="choose from expert, random, zero"):
        make_policy("bogus", "robolearn/PandaLift-v0", env.action_space)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_policy("expert", "robolearn/PandaLift-v0", env.action_space, noise=-1)
