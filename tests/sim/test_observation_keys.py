"""SelectObservationKeys hands on the chosen keys only (final observations of ended episodes too), and the arm
tasks name their proprioception, so everything else is privileged state."""

import numpy as np
import pytest

from robolearn.sim.observation_keys import SelectObservationKeys, privileged_keys
from robolearn.sim.registry import gym_make
from robolearn.sim.vector import make_vec_env

LIFT = "robolearn/PandaLift-v0"
KEYS = ["joint_pos", "gripper"]


def test_selected_keys_only_final_observations_included():
    venv = SelectObservationKeys(make_vec_env(LIFT, 2, seed=0, max_episode_steps=3), KEYS)
    try:
        obs, _ = venv.reset(seed=0)
        assert list(obs) == KEYS and set(venv.single_observation_space.spaces) == set(KEYS)
        assert venv.observation_space["joint_pos"].shape == (2, 7)
        for _ in range(3):
            obs, _, terminated, truncated, info = venv.step(np.zeros((2, 5), np.float32))
        assert (terminated | truncated).all() and list(obs) == KEYS
        assert all(list(final) == KEYS for final in info["final_obs"])
    finally:
        venv.close()


def test_unknown_key_is_one_line_naming_the_fix():
    with pytest.raises(ValueError, match=r"obs_keys \['pixels/front'\].*pixels setting") as err:
        SelectObservationKeys(make_vec_env(LIFT, 1, seed=0), ["joint_pos", "pixels/front"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("env_id", [LIFT, "robolearn/PandaPegInsert-v0"])
def test_arm_object_state_is_privileged(env_id):
    env = gym_make(env_id)
    proprio = env.unwrapped.proprioception_keys()
    keys = list(env.observation_space.spaces)
    env.close()
    assert set(proprio) <= set(keys) and "joint_pos" in proprio
    assert "object_pos" in privileged_keys(keys, proprio)
    assert privileged_keys([*proprio, "pixels/front"], proprio) == []
