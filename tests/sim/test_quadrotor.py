"""Quadrotor tasks: model figures, rate controller, experts, gates logic, motors mode, dynamics hooks."""

import gymnasium as gym
import numpy as np
import pytest

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.core.config import ConfigError
from robolearn.policy_factory import make_policy
from robolearn.rollout import run_episode
from robolearn.sim.mujoco_env import ActionError
from robolearn.sim.quadrotor.model import CRAZYFLIE, GRAVITY
from robolearn.sim.quadrotor.rate_controller import RateController

HOVER, GATES = "robolearn/QuadHover-v0", "robolearn/QuadGates-v0"


def test_model_uses_the_published_figures():
    env = gym.make(HOVER).unwrapped
    env.reset(seed=0)
    body = env.model.body("quad").id
    assert env.model.body_mass[body] == pytest.approx(0.027)
    np.testing.assert_allclose(env.model.body_inertia[body], CRAZYFLIE.inertia)
    np.testing.assert_allclose(np.linalg.norm(CRAZYFLIE.rotor_positions()[:, :2], axis=1), 0.0397)
    assert 4 * CRAZYFLIE.max_motor_thrust == pytest.approx(2.25 * 0.027 * GRAVITY)
    np.testing.assert_allclose(env.model.actuator_ctrlrange[:, 1], CRAZYFLIE.max_motor_thrust)
    assert env.action_space.shape == (4,) and env.action_space.high[0] == pytest.approx(0.596, abs=1e-3)


def test_rate_controller_mixes_and_desaturates():
    ctrl = RateController(CRAZYFLIE, (20.0, 20.0, 10.0))
    alloc = CRAZYFLIE.allocation()
    f = np.array(ctrl.motor_thrusts(0.265, (0.0, 0.0, 0.0), [0.0, 0.0, 0.0]))
    np.testing.assert_allclose(f, 0.265 / 4)
    wrench = alloc @ np.array(ctrl.motor_thrusts(0.265, (1.0, -2.0, 0.5), [0.0, 0.0, 0.0]))
    np.testing.assert_allclose(wrench[1:], np.array(CRAZYFLIE.inertia) * [20.0, -40.0, 5.0], rtol=1e-9)
    # Near full thrust the torque is kept and the collective thrust gives way.
    f = np.array(ctrl.motor_thrusts(0.59, (5.0, 0.0, 0.0), [0.0, 0.0, 0.0]))
    assert f.max() == pytest.approx(CRAZYFLIE.max_motor_thrust) and f.min() >= 0
    assert (alloc @ f)[1] == pytest.approx(CRAZYFLIE.inertia[0] * 100.0)


def test_hover_expert_reaches_and_holds_under_wind():
    env = gym.make(HOVER)
    expert = make_policy("expert", HOVER, env.action_space, seed=0)
    results = [run_episode(env, expert, seed=s) for s in range(3)]
    assert all(r["success"] for r in results), results


def test_gates_expert_completes_the_lap():
    env = gym.make(GATES)
    expert = make_policy("expert", GATES, env.action_space, seed=0)
    obs, info = env.reset(seed=0)
    expert.reset([0])
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act({k: v[None] for k, v in obs.items()})[0, 0])
        done = terminated or truncated
    assert info["is_success"] and terminated and info["gates_passed"] == 6
    assert 2.0 < info["lap_time"] < 15.0


@pytest.mark.parametrize("offset, flag", [(1.0, "missed_gate"), (0.27, "hit_gate_frame")])
def test_passing_beside_a_gate_fails(offset, flag):
    env = gym.make(GATES, gate_jitter=0.0, gate_yaw_jitter=0.0).unwrapped
    env.reset(seed=0)
    g, n = env._centres[0], env._normals[0]
    side = np.array([-n[1], n[0], 0.0])
    env.data.qpos[0:3] = g - 0.3 * n + offset * side
    env.data.qvel[0:3] = 3.0 * n
    hover = np.array([CRAZYFLIE.hover_thrust, 0, 0, 0], np.float32)
    for _ in range(10):
        _, reward, terminated, _, info = env.step(hover)
        if terminated:
            break
    assert terminated and info[flag] and not info["is_success"] and info["reward/crash"] == 1.0


def test_motors_mode_flies_on_rotor_thrusts():
    env = gym.make(HOVER, action_mode="motors", wind_mean_max=0.0, wind_gust_max=0.0, max_initial_tilt=0.0)
    assert env.action_space.shape == (4,)
    obs, _ = env.reset(seed=0)
    z0 = obs["position"][2]
    for _ in range(25):
        obs, *_ = env.step(np.full(4, CRAZYFLIE.hover_thrust / 4, np.float32))
    assert abs(obs["position"][2] - z0) < 1e-3 and np.abs(obs["body_rates"]).max() < 1e-6
    for _ in range(25):
        obs, *_ = env.step(np.full(4, CRAZYFLIE.max_motor_thrust, np.float32))
    assert obs["position"][2] - z0 > 0.5  # 1.25 g net upwards for 0.5 s, minus the motor lag
    with pytest.raises(ActionError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ActionError, match="NaN"):
        env.step(np.array([0.1, np.nan, 0.1, 0.1]))


def test_rates_are_tracked():
    env = gym.make(HOVER, wind_mean_max=0.0, wind_gust_max=0.0, max_initial_tilt=0.0)
    env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(np.array([CRAZYFLIE.hover_thrust, 0.0, 0.0, 2.0], np.float32))
    assert obs["body_rates"][2] == pytest.approx(2.0, abs=0.2)


def test_dynamics_hooks_compose_with_the_randomizer():
    env = gym.make(HOVER, randomization={"mass_scale": [1.5, 1.5]}).unwrapped
    env.dynamics.mass = 0.030
    env.dynamics.thrust_gain = 0.9
    env.wind.mean_max = 0.0
    _, info = env.reset(seed=0)
    assert env.model.body_mass[env.model.body("quad").id] == pytest.approx(0.045)
    np.testing.assert_allclose(env.model.actuator_gainprm[:4, 0], 0.9)
    assert info["dynamics"]["mass"] == 0.030 and np.allclose(info["wind_mean"], 0.0)


def test_same_seed_same_trajectory_with_gusts():
    env = gym.make(HOVER, wind_gust_rate=5.0)
    runs = []
    for _ in range(2):
        env.reset(seed=3)
        for _ in range(30):
            obs, *_ = env.step(np.array([CRAZYFLIE.hover_thrust, 0, 0, 0], np.float32))
        runs.append(obs["position"])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown key 'gate_count'.*allowed keys"):
        gym.make(GATES, gate_count=4)
    with pytest.raises(ConfigError, match="action_mode"):
        gym.make(HOVER, action_mode="attitude")
