"""Domain randomization: reproducible from the seed, reported at reset, and really applied."""

import gymnasium as gym
import numpy as np
import pytest

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.core.config import ConfigError
from robolearn.sim.randomization import load_dynamics_preset
from robolearn.sim.registry import TASKS

WIDE = {
    "mass_scale": [0.5, 1.5], "friction_scale": [0.5, 1.5], "damping_scale": [0.5, 1.5],
    "armature_scale": [0.5, 1.5], "actuator_gain_scale": [0.5, 1.5], "action_delay_steps": [0, 3],
    "obs_noise_std": {"joint_pos": 0.01}, "obs_bias_std": {"ee_pos": 0.01},
    "push_force": [5.0, 10.0], "push_probability": 1.0,
}


def test_parameters_reported_and_reproducible_from_seed():
    env = gym.make("robolearn/PandaLift-v0", randomization=WIDE)
    _, a = env.reset(seed=3)
    _, b = env.reset(seed=3)
    _, c = env.reset(seed=4)
    assert a["randomization"] == b["randomization"] != c["randomization"]
    assert set(a["randomization"]) >= {"mass_scale", "friction_scale", "action_delay_steps", "obs_bias/ee_pos"}


def test_model_parameters_change_and_restore():
    env = gym.make("robolearn/PandaLift-v0", randomization=WIDE)
    base = env.unwrapped
    nominal = gym.make("robolearn/PandaLift-v0").unwrapped.model
    _, info = env.reset(seed=1)
    scale = info["randomization"]["mass_scale"]
    np.testing.assert_allclose(base.model.body_mass, nominal.body_mass * scale)
    np.testing.assert_allclose(base.model.geom_friction[:, 0],
                               nominal.geom_friction[:, 0] * info["randomization"]["friction_scale"])


def test_action_delay_executes_late():
    env = gym.make("robolearn/PandaLift-v0", action_mode="joint_delta",
                   randomization={"action_delay_steps": [2, 2]})
    obs, info = env.reset(seed=0)
    assert info["randomization"]["action_delay_steps"] == 2
    move = np.zeros(8, np.float32)
    move[0] = 0.1
    q0 = obs["joint_pos"][0]
    moved = []
    for _ in range(3):
        obs, *_ = env.step(move)
        moved.append(abs(obs["joint_pos"][0] - q0) > 0.02)
    assert moved == [False, False, True]


def test_pushes_and_observation_noise():
    env = gym.make("robolearn/PandaLift-v0", randomization={**WIDE, "action_delay_steps": [0, 0]})
    env.reset(seed=0)
    zero = np.zeros(5, np.float32)
    _, _, _, _, info = env.step(zero)
    assert 5.0 <= info["push_force"] <= 10.0
    clean = gym.make("robolearn/PandaLift-v0")
    a, _ = env.reset(seed=0)
    b, _ = clean.reset(seed=0)
    assert not np.allclose(a["joint_pos"], b["joint_pos"]) and np.allclose(a["joint_pos"], b["joint_pos"], atol=0.1)


@pytest.mark.parametrize("env_id", [e for e in TASKS if e.startswith("robolearn/Panda")])
def test_real_gap_preset_is_fixed(env_id):
    gap = load_dynamics_preset(env_id, "real-gap")
    assert gap.mass_scale[0] == gap.mass_scale[1] and gap.actuator_gain_scale[0] == gap.actuator_gain_scale[1]
    env = gym.make(env_id, randomization=gap)
    _, a = env.reset(seed=0)
    _, b = env.reset(seed=1)
    assert a["randomization"]["mass_scale"] == b["randomization"]["mass_scale"] != 1.0


def test_bad_presets_and_keys_are_named():
    with pytest.raises(ConfigError, match="no preset 'bogus'"):
        load_dynamics_preset("robolearn/PandaLift-v0", "bogus")
    with pytest.raises(ConfigError, match="unknown key 'mass'"):
        gym.make("robolearn/PandaLift-v0", randomization={"mass": [1, 2]})
