"""The compiled quadrotor physics loop: built, bit-identical to the Python reference, safe with bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import robolearn.sim.envs  # noqa: F401  (registers the tasks)
from robolearn.sim.quadrotor.substeps import native_module

HOVER, GATES = "robolearn/QuadHover-v0", "robolearn/QuadGates-v0"
WINDY = {"wind_mean_max": 1.0, "wind_gust_max": 2.0, "wind_gust_rate": 2.0}
PUSHES = {"randomization": {"push_force": [0.0, 0.05], "push_probability": 0.3}}


def test_the_compiled_loop_is_built():
    assert native_module() is not None, "robolearn.sim.quadrotor._substeps is missing: run `pip install -e .`"


def _trace(env_id: str, kwargs: dict, native: bool, steps: int = 150) -> list[np.ndarray]:
    """Observations, rewards and physics state of seeded episodes under seeded random actions."""
    env = gym.make(env_id, **kwargs).unwrapped
    env.native_substeps = native
    rng = np.random.default_rng(3)
    low, high = env.action_space.low, env.action_space.high
    obs, _ = env.reset(seed=11)
    out = []
    for _ in range(steps):
        action = rng.uniform(low, high * np.array([0.6, 0.5, 0.5, 0.5]))  # saturates some rotors
        obs, reward, terminated, truncated, _ = env.step(action)
        out += [*obs.values(), np.array([reward]), env.data.qpos.copy(), env.data.qvel.copy(),
                env.data.act.copy(), env.data.ctrl.copy(), env.data.xfrc_applied.copy()]
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return out


@pytest.mark.parametrize("env_id, kwargs", [(HOVER, {}), (HOVER, {"action_mode": "motors"}), (HOVER, WINDY),
                                            (HOVER, PUSHES), (GATES, {})])
def test_compiled_loop_equals_python_bit_for_bit(env_id, kwargs):
    compiled, python = _trace(env_id, kwargs, True), _trace(env_id, kwargs, False)
    assert len(compiled) == len(python)
    for a, b in zip(compiled, python, strict=True):
        np.testing.assert_array_equal(a, b)


def test_run_many_equals_one_call_per_env():
    envs = [[gym.make(HOVER, **WINDY).unwrapped for _ in range(3)] for _ in range(2)]
    for group in envs:
        for i, env in enumerate(group):
            env.reset(seed=i)
            env.pre_step(np.array([0.3, 0.5 * i, -0.2, 0.1]))
    for env in envs[0]:
        env.physics_step()
    jobs = [env.physics_job() for env in envs[1]]
    run_many = jobs[0][0]
    assert all(job[0] is run_many for job in jobs)
    for env, out in zip(envs[1], run_many([args for _, args in jobs]), strict=True):
        env.finish_physics(out)
    for a, b in zip(*envs, strict=True):
        np.testing.assert_array_equal(a.data.qpos, b.data.qpos)
        np.testing.assert_array_equal(a.data.xfrc_applied, b.data.xfrc_applied)
        assert a._applied_drag == b._applied_drag


def test_bad_jobs_raise_instead_of_crashing():
    module = native_module()
    env = gym.make(HOVER).unwrapped
    env.reset(seed=0)
    _, args = env.physics_job()
    with pytest.raises(TypeError, match="21 arguments"):
        module.run(*args[:-1])
    with pytest.raises(ValueError, match="null address"):
        module.run(0, *args[1:])
    with pytest.raises(ValueError, match="nstep"):
        module.run(*args[:3], -1, *args[4:])
    with pytest.raises(TypeError):
        module.run_many([args, "not a job"])
