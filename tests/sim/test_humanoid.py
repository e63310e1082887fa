"""The G1 humanoid tasks: model figures, env checker, expert success, standing under pushes, bad input."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.core.config import ConfigError
from robolearn.sim.humanoid import g1_model
from robolearn.sim.humanoid.expert import G1BimanualLiftExpert
from robolearn.sim.humanoid.standing_controller import StandingController
from robolearn.sim.mujoco_env import ActionError
from robolearn.sim.registry import load_object, task

IDS = ["robolearn/G1BimanualLift-v0", "robolearn/G1PushRecovery-v0"]


def _rollout(env, policy, seed: int, steps: int) -> dict:
    obs, _ = env.reset(seed=seed)
    policy.reset()
    info = {}
    for _ in range(steps):
        action = policy.act({k: v[None] for k, v in obs.items()})
        assert action.shape == (1, 1, env.action_space.shape[0]) and action.dtype == np.float32
        obs, _, terminated, truncated, info = env.step(action[0, 0])
        if terminated or truncated:
            break
    return info


def test_model_matches_published_figures():
    spec = mujoco.MjSpec()
    g1_model.add_ground(spec)
    g1_model.build_g1(spec, floating=True)
    model = spec.compile()
    data = mujoco.MjData(model)
    assert model.nu == 29 and model.nq == 7 + 29
    assert abs(model.body_subtreemass[model.body("pelvis").id] - 34.6) < 0.5  # ~35 kg
    mujoco.mj_kinematics(model, data)
    head_top = data.geom_xpos[model.geom("head").id][2] + model.geom_size[model.geom("head").id][0]
    sole = data.site_xpos[model.site("left_sole").id][2]
    assert abs((head_top - sole) - 1.32) < 0.02  # 1.32 m tall with straight legs
    knee = model.joint("left_knee_joint").id
    assert np.allclose(model.jnt_range[knee], [0.0, np.deg2rad(165)])


@pytest.mark.parametrize("env_id", IDS)
def test_env_checker_shapes_and_bad_actions(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in obs.values())
    dim = env.action_space.shape[0]
    with pytest.raises(ActionError, match="shape"):
        env.step(np.zeros(dim + 2))
    with pytest.raises(ActionError, match="NaN or inf"):
        env.step(np.full(dim, np.nan))
    assert task(env_id).embodiment == "humanoid"
    env.close()


def test_unknown_config_key_is_named():
    with pytest.raises(ConfigError, match="unknown key 'push_strength'"):
        gym.make("robolearn/G1PushRecovery-v0", push_strength=10.0)
    with pytest.raises(ValueError, match="bad push settings"):
        gym.make("robolearn/G1PushRecovery-v0", push_force=-1.0)


def test_bimanual_lift_expert_succeeds():
    env = gym.make("robolearn/G1BimanualLift-v0")
    expert = load_object(task("robolearn/G1BimanualLift-v0").expert)()
    assert isinstance(expert, G1BimanualLiftExpert)
    results = [_rollout(env, expert, seed, 150)["is_success"] for seed in (0, 1, 2)]
    assert all(results), results


def test_bimanual_lift_clips_arm_targets_to_the_safety_layers_lead():
    """With target_lead_limit the applied targets stay within it of the measured joints, as the deploy safety
    layer keeps them; the expert still lifts; a negative limit is refused in one line."""
    env = gym.make("robolearn/G1BimanualLift-v0", target_lead_limit=0.5)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    far = np.clip(obs["joint_pos"] + 2.0, base.action_space.low, base.action_space.high)
    env.step(far)
    q_before = obs["joint_pos"].astype(np.float64)
    lead = base.data.ctrl[base.arm.act] - q_before
    assert np.abs(lead).max() <= 0.5 + 1e-6 and np.abs(lead).max() > 0.4
    expert = load_object(task("robolearn/G1BimanualLift-v0").expert)()
    assert _rollout(env, expert, 1, 150)["is_success"]
    with pytest.raises(ValueError, match="target_lead_limit must be >= 0"):
        gym.make("robolearn/G1BimanualLift-v0", target_lead_limit=-1.0)


def test_standing_controller_survives_mild_pushes():
    env = gym.make("robolearn/G1PushRecovery-v0", push_force=40.0)
    info = _rollout(env, StandingController(), seed=0, steps=250)
    assert info["is_success"]
    assert info["reward/upright"] > 0.95


def test_passive_robot_falls_under_a_strong_push():
    """The failure path is real: with the balance feedback off, a long 150 N push topples the robot."""
    env = gym.make("robolearn/G1PushRecovery-v0", push_force=150.0, push_duration=0.4, push_interval=(0.5, 0.5))
    passive = StandingController(k_ankle=0.0, k_hip=0.0, k_tilt=0.0)
    obs, _ = env.reset(seed=0)
    for _ in range(250):
        obs, _, terminated, truncated, info = env.step(passive.act({k: v[None] for k, v in obs.items()})[0, 0])
        if terminated:
            break
    assert terminated and not info["is_success"]


def test_push_attributes_are_read_at_reset():
    env = gym.make("robolearn/G1PushRecovery-v0").unwrapped
    env.push_force = 0.0
    _, info = env.reset(seed=3)
    pushes = info["push_schedule"][: info["push_count"]]
    assert info["task_push_force"] == 0.0 and len(pushes) and np.all(pushes[:, 2:] == 0.0)
    assert np.isnan(info["push_schedule"][info["push_count"]:]).all()
    env.push_force = 80.0
    _, info = env.reset(seed=3)
    assert np.allclose(np.linalg.norm(info["push_schedule"][: info["push_count"], 2:4], axis=1), 80.0)


def test_push_recovery_batches():
    """Reset infos of episodes with different push counts stack in a batched env (seed 4: 3 and 4 pushes)."""
    from robolearn.sim.vector import make_vec_env

    venv = make_vec_env("robolearn/G1PushRecovery-v0", 4, seed=0)
    try:
        _, info = venv.reset(seed=4)
        counts = info["push_count"].tolist()
        assert len(set(counts)) == 2 and info["push_schedule"].shape[:2] == (4, 7)
        for row, n in zip(info["push_schedule"], counts, strict=True):
            assert np.isfinite(row[:n]).all() and np.isnan(row[n:]).all()
    finally:
        venv.close()
