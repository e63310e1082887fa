"""The policy node's inference process: same actions as in-process, clear errors, a dead child reported."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from robolearn.ros_nodes.policy_runner import PolicyRunner
from robolearn.ros_nodes.remote_policy import RemotePolicy, load_policy
from robolearn.sim.registry import gym_make

LIFT = "robolearn/PandaLift-v0"


@pytest.fixture(scope="module")
def remote():
    policy = RemotePolicy("expert", LIFT, noise=0.2, seed=4)
    yield policy
    policy.close()


def _obs(seed: int) -> dict[str, np.ndarray]:
    env = gym_make(LIFT)
    obs, _ = env.reset(seed=seed)
    env.close()
    return {k: np.asarray(v)[None] for k, v in obs.items()}


def test_remote_policy_acts_like_the_same_policy_in_process(remote):
    local = load_policy("expert", LIFT, noise=0.2, seed=4)
    local.reset()
    remote.reset()
    for seed in range(3):
        batch = _obs(seed)
        np.testing.assert_allclose(remote.act(batch), np.asarray(local.act(batch)), rtol=0, atol=1e-6)
    assert remote.pid != os.getpid()


def test_remote_policy_feeds_the_runner(remote):
    runner = PolicyRunner(remote)
    try:
        obs = {k: v[0] for k, v in _obs(0).items()}
        runner.push(obs, {"episode": 0, "step": 0, "stamp": 0.0})
        for _ in range(250):
            action = runner.pop()
            if action is not None:
                break
            time.sleep(0.02)
        assert action is not None and action.shape == (5,) and runner.error is None
    finally:
        runner.stop()


def test_remote_policy_bad_spec_names_the_problem(tmp_path):
    with pytest.raises(RuntimeError, match="could not load policy .*missing"):
        RemotePolicy(str(tmp_path / "missing"), LIFT)


def test_remote_policy_reports_a_dead_child():
    policy = RemotePolicy("zero", LIFT)
    try:
        os.kill(policy.pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match="inference process exited"):
            policy.act(_obs(0))
    finally:
        policy.close()


def test_the_child_prepares_after_each_act_when_the_served_policy_can(remote, tmp_path):
    """A refined residual policy (base chunk + per-step correction) runs its ``prepare`` (the base's next chunk)
    in the child right after each ``act`` reply, between commands and with no round trip of its own; the
    actions equal those of the same policy in this process called act-then-prepare."""
    from robolearn.refine.residual import ResidualVecEnv
    from robolearn.refine.saved import save_refined
    from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
    from robolearn.sim.vector import make_vec_env

    assert not remote.prepares  # the scripted expert has no prepare step
    venv = make_vec_env(LIFT, 1, seed=0)
    env = ResidualVecEnv(venv, load_policy("expert", LIFT), 0.1)
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[32]), env.obs_shapes, env.action_dim)
    path = save_refined(tmp_path / "policy", "residual", "expert:noise=0", LIFT, learner.actor, env.obs_shapes,
                        [32], {"scale": 0.1})
    venv.close()
    served, local = RemotePolicy(str(path), LIFT, prepare=True), load_policy(str(path), LIFT)
    try:
        assert served.prepares and not hasattr(served, "prepare")  # the runner has nothing to call
        for seed in range(6):
            batch = _obs(seed % 2)
            np.testing.assert_allclose(served.act(batch), local.act(batch), rtol=0, atol=1e-6)
            local.prepare(batch)
    finally:
        served.close()


def test_a_served_chunk_policy_predicts_ahead(tmp_path):
    """A BC policy directory served from the child: ``predict_ahead`` reaches the policy there (Ta back), and its
    chunks then hold all Tp predicted actions, the first Ta of them those the policy in this process executes."""
    from robolearn.policies.checkpoint import make_policy, save
    from robolearn.policies.configuration import BCConfig, PolicyConfig

    env = gym_make(LIFT)
    keys = ["joint_pos", "object_pos", "goal_pos"]
    shapes = {k: list(env.observation_space[k].shape) for k in keys}
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    env.close()
    cfg = PolicyConfig(type="bc", obs_shapes=shapes, action_dim=len(low), n_obs_steps=2, horizon=8, n_action_steps=4,
                       bc=BCConfig(hidden_dims=[32]))
    policy = make_policy(cfg)
    stats = {k: {"min": -np.ones(s), "max": np.ones(s), "mean": np.zeros(s), "std": np.ones(s)}
             for k, s in ((k, v[0]) for k, v in shapes.items())}
    policy.set_stats(stats | {"action": {"min": low, "max": high, "mean": (low + high) / 2, "std": (high - low) / 4}})
    path = save(policy, tmp_path / "bc")
    served, local = RemotePolicy(str(path), LIFT), load_policy(str(path), LIFT)
    try:
        batch = {k: v for k, v in _obs(0).items() if k in keys}
        short = local.act(batch)
        assert served.predict_ahead() == 4 and short.shape == (1, 4, len(low))
        whole = served.act(batch)
        assert whole.shape == (1, 8, len(low))
        np.testing.assert_allclose(whole[:, :4], short, rtol=0, atol=1e-6)
    finally:
        served.close()
