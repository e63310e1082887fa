"""make_vec_env: same-step autoreset, time limits, determinism, agreement with SyncVectorEnv, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from robolearn.sim.mujoco_env import ActionError
from robolearn.sim.vector import MujocoVectorEnv, make_vec_env

LIFT = "robolearn/PandaLift-v0"


def _actions(vec: gym.vector.VectorEnv, steps: int, seed: int = 0) -> np.ndarray:
    space = vec.single_action_space
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(steps, vec.num_envs, *space.shape)).astype(np.float32)


def test_spaces_and_metadata():
    vec = make_vec_env(LIFT, 3, seed=0, num_threads=2)
    try:
        assert isinstance(vec, MujocoVectorEnv)
        assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert vec.max_episode_steps == gym.spec(LIFT).max_episode_steps
        obs, info = vec.reset()
        assert obs.keys() == vec.single_observation_space.keys()
        for key, space in vec.single_observation_space.items():
            assert obs[key].shape == (3, *space.shape) and obs[key].dtype == np.float32
        assert vec.observation_space.contains(obs)
        obs, rew, term, trunc, info = vec.step(_actions(vec, 1)[0])
        assert rew.shape == term.shape == trunc.shape == (3,)
        assert rew.dtype == np.float64 and term.dtype == trunc.dtype == np.bool_
        assert info["is_success"].shape == (3,) and info["_is_success"].all()
        assert np.isfinite(np.concatenate([v.ravel() for v in obs.values()])).all()
    finally:
        vec.close()


def test_same_step_autoreset_returns_final_obs_and_counts_episodes():
    limit, steps = 4, 10
    vec = make_vec_env(LIFT, 2, seed=3, max_episode_steps=limit, num_threads=2)
    try:
        obs, _ = vec.reset()
        endings = 0
        for k, action in enumerate(_actions(vec, steps), start=1):
            prev = obs
            obs, _, term, trunc, info = vec.step(action)
            done = term | trunc
            if k % limit == 0:  # random actions do not lift the cube: only the time limit ends episodes
                assert trunc.all() and not term.any()
                assert info["_final_obs"].all() and info["_final_info"].all()
                for i in range(2):
                    final = info["final_obs"][i]
                    assert set(final) == set(obs)
                    # the final obs continues the episode (the cube barely moves), the new obs restarts it
                    assert np.allclose(final["goal_pos"], prev["goal_pos"][i])
                    assert not np.allclose(obs["goal_pos"][i], prev["goal_pos"][i])
                assert info["_object_init_pos"].all()  # reset infos of the new episodes
                assert "reward/reach" in info["final_info"]
                endings += int(done.sum())
            else:
                assert not done.any() and "final_obs" not in info
            assert (vec.episode_steps == k % limit).all()
        assert endings == 2 * (steps // limit)
    finally:
        vec.close()


def test_deterministic_given_seed_and_matches_sync_backend():
    runs = []
    for backend, threads in (("threads", 2), ("threads", 1), ("sync", None)):
        vec = make_vec_env(LIFT, 2, seed=7, backend=backend, num_threads=threads, max_episode_steps=3)
        obs, _ = vec.reset()
        trace = [obs["object_pos"].copy()]
        for action in _actions(vec, 5, seed=1):
            obs, rew, term, trunc, info = vec.step(action)
            trace += [obs["joint_pos"].copy(), obs["object_pos"].copy(), rew, trunc]
            if "final_obs" in info:
                trace.append(np.stack([o["joint_pos"] for o in info["final_obs"]]))
        runs.append(trace)
        vec.close()
    for other in runs[1:]:
        assert len(other) == len(runs[0])
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_reset_mask_resets_only_selected_envs():
    vec = make_vec_env(LIFT, 3, seed=0, num_threads=2)
    try:
        obs, _ = vec.reset()
        vec.step(_actions(vec, 1)[0])
        vec.step(_actions(vec, 1)[0])
        mask = np.array([False, True, False])
        before = vec.episode_steps.copy()
        obs, info = vec.reset(seed=100, options={"reset_mask": mask})
        assert vec.episode_steps.tolist() == [before[0], 0, before[2]]
        assert info["_object_init_pos"].tolist() == [False, True, False]
    finally:
        vec.close()


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.zeros((2, 4), np.float32), r"shape \(2, 4\), expected \(2, 5\)"),
        (np.zeros((5,), np.float32), r"shape \(5,\), expected \(2, 5\)"),
        (np.array([[0, 0, 0, 0, 0], [0, np.nan, 0, 0, 0]], np.float32), r"envs \[1\] contain NaN or inf"),
        (np.array([[np.inf, 0, 0, 0, 0], [0, 0, 0, 0, 0]], np.float32), r"envs \[0\] contain NaN or inf"),
    ],
)
def test_bad_action_batch_raises_clear_error(actions, match):
    vec = make_vec_env(LIFT, 2, seed=0, num_threads=1)
    try:
        vec.reset()
        steps = vec.episode_steps.copy()
        with pytest.raises(ActionError, match=match):
            vec.step(actions)
        assert (vec.episode_steps == steps).all()  # nothing was stepped
    finally:
        vec.close()


def test_out_of_range_actions_are_clipped_and_counted():
    vec = make_vec_env(LIFT, 2, seed=0, num_threads=1)
    try:
        vec.reset()
        action = np.array([[1.0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0.5]], np.float32)
        _, _, _, _, info = vec.step(action)
        assert info["action_clipped"].tolist() == [1, 0]
    finally:
        vec.close()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="backend must be one of"):
        make_vec_env(LIFT, 2, backend="bogus")
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        make_vec_env(LIFT, 0)
    with pytest.raises(KeyError, match="unknown env id 'robolearn/Nope-v0'"):
        make_vec_env("robolearn/Nope-v0", 2)
    vec = make_vec_env(LIFT, 1, num_threads=1)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        vec.step(np.zeros((1, 5), np.float32))
    vec.close()


def test_call_get_attr_and_render():
    vec = make_vec_env(LIFT, 2, seed=0, num_threads=1, env_kwargs={"render_mode": "rgb_array", "width": 32,
                                                                    "height": 24})
    try:
        vec.reset()
        assert vec.get_attr("n_substeps") == (25, 25)
        assert [p.shape for p in vec.call("tcp_pos")] == [(3,), (3,)]
        vec.set_attr("terminate_on_success", [False, True])
        assert vec.get_attr("terminate_on_success") == (False, True)
        try:
            frames = vec.render()
        except Exception as err:  # no offscreen GL on this machine: the env's own renderer error
            pytest.skip(f"offscreen rendering unavailable: {err}")
        assert [f.shape for f in frames] == [(24, 32, 3)] * 2
    finally:
        vec.close()
