"""The rewritten step paths give bit-identical results to straightforward reference implementations.

The references are the plain versions of each computation (fresh arrays, numpy calls, one helper per
physics step); the env code computes the same float operations in the same order with fewer Python
calls, so trajectories must match exactly, not only within a tolerance.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.sim.arm.controller import DOWN, DiffIKController
from robolearn.sim.mujoco_env import RewardTerms
from robolearn.sim.quadrotor.base import QuadTaskEnv

LIFT, PEG, HOVER, GATES = ("robolearn/PandaLift-v0", "robolearn/PandaPegInsert-v0", "robolearn/QuadHover-v0",
                           "robolearn/QuadGates-v0")


def reference_joint_targets(ik: DiffIKController, dpos: np.ndarray, dyaw: float) -> np.ndarray:
    """Damped-least-squares joint targets (7,) rad, written plainly (copies, fancy indexing, new arrays)."""
    pos = ik.data.site_xpos[ik._site_id].copy()
    rot = ik.data.site_xmat[ik._site_id].reshape(3, 3).copy()
    yaw = float(np.arctan2(rot[1, 0], rot[0, 0])) + dyaw
    c, s = np.cos(yaw), np.sin(yaw)
    target_rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ DOWN
    quat, rot_err = np.zeros(4), np.zeros(3)
    mujoco.mju_mat2Quat(quat, (target_rot @ rot.T).ravel())
    mujoco.mju_quat2Vel(rot_err, quat, 1.0)
    err = np.concatenate([pos + dpos - pos, rot_err])
    jacp, jacr = np.zeros((3, ik.model.nv)), np.zeros((3, ik.model.nv))
    mujoco.mj_jacSite(ik.model, ik.data, jacp, jacr, ik._site_id)
    jac = np.vstack([jacp, jacr])[:, ik.dof_ids]
    q = ik.data.qpos[ik.qpos_ids]
    pull = ik.posture_gain * (ik.posture - q)
    jjt = jac @ jac.T + (ik.damping**2) * np.eye(6)
    mujoco.mju_cholFactor(jjt, 0.0)
    x = np.zeros(6)
    mujoco.mju_cholSolve(x, jjt, err - jac @ pull)
    dq = np.clip(pull + jac.T @ x, -ik.max_joint_step, ik.max_joint_step)
    return np.clip(q + dq, ik._low, ik._high)


@pytest.mark.parametrize("env_id", [LIFT, PEG])
def test_ik_matches_reference_along_a_random_trajectory(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    low, high = env.action_space.low, env.action_space.high
    for _ in range(40):
        action = rng.uniform(low, high)
        expected = reference_joint_targets(env.ik, action[:3].astype(np.float64), float(action[3]))
        got = env.ik.joint_targets_for_delta(action[:3].astype(np.float64), float(action[3]))
        np.testing.assert_array_equal(got, expected)
        env.step(action)


@pytest.mark.parametrize("env_id", [LIFT, PEG, HOVER, GATES])
def test_reward_and_info_match_reward_terms(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=1)
    captured: dict[str, float] = {}
    task_terms = env._reward_terms

    def spy() -> dict[str, float]:
        values = task_terms()
        captured.clear()
        captured.update(values)
        return values

    env._reward_terms = spy
    rng = np.random.default_rng(1)
    for _ in range(5):
        _, reward, _, _, info = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        terms = RewardTerms({**captured, "success": float(info["is_success"])}, env.reward_scales)
        assert reward == terms.total()
        assert {k: v for k, v in info.items() if k.startswith("reward/")} == terms.info()


def reference_physics_step(env: QuadTaskEnv) -> None:
    """The quadrotor's sub-stepping as one call of the rate controller and numpy drag per physics step."""
    m, d = env.model, env.data
    if env._wind_state is not None:
        env._wind_vel = env._wind_state.step(env.wind, env.dt)
    force = d.xfrc_applied[env._body]
    push = force[:3] - env._applied_drag
    drag_force = np.zeros(3)
    for _ in range(env.n_substeps):
        if env.cfg.action_mode == "rates":
            d.ctrl[:] = env.rate_controller.motor_thrusts(env._thrust_cmd, env._rate_cmd, d.qvel[3:6].tolist())
        drag_force = env._drag * (env._wind_vel - d.qvel[:3])
        force[:3] = push + drag_force
        mujoco.mj_step(m, d)
    env._applied_drag = drag_force


@pytest.mark.parametrize("env_id, kwargs", [(HOVER, {}), (HOVER, {"action_mode": "motors"}), (GATES, {}),
                                            (HOVER, {"randomization": {"push_force": [0.0, 0.05],
                                                                       "push_probability": 0.3}})])
def test_quad_substeps_match_reference(env_id, kwargs):
    envs = [gym.make(env_id, **kwargs).unwrapped for _ in range(2)]
    for env in envs:
        env.reset(seed=5)
    envs[1].physics_step = lambda: reference_physics_step(envs[1])
    rng = np.random.default_rng(2)
    low, high = envs[0].action_space.low, envs[0].action_space.high
    for _ in range(60):
        action = rng.uniform(low, high * np.array([0.6, 0.5, 0.5, 0.5]))  # saturates some rotors, keeps flying
        results = [env.step(action) for env in envs]
        for k in results[0][0]:
            np.testing.assert_array_equal(results[0][0][k], results[1][0][k])
        assert results[0][1:4] == results[1][1:4]
        for name in ("qpos", "qvel", "act", "ctrl", "xfrc_applied"):
            np.testing.assert_array_equal(getattr(envs[0].data, name), getattr(envs[1].data, name))
        if results[0][2]:
            break
