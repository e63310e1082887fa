"""Regression tests for the refinement fixes: unbiased wrapper evaluation, observation standardisation,
and the TD3+BC-style penalty on the actor output."""

from __future__ import annotations

import numpy as np
import torch

from robolearn.refine.evaluation import evaluate_wrapper
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.networks import Actor


class _LengthBiasedEnv:
    """Envs 0 and 1 always succeed after 1 step, envs 2 and 3 always fail after 10 steps: 50% success."""

    num_envs = 4

    def reset(self, seed=None):
        self.t = np.zeros(self.num_envs, int)
        return {"x": np.zeros((self.num_envs, 1), np.float32)}

    def step(self, action):
        self.t += 1
        succeeds = np.arange(self.num_envs) < 2
        done = np.where(succeeds, self.t >= 1, self.t >= 10)
        success = done & succeeds
        self.t[done] = 0
        obs = {"x": np.zeros((self.num_envs, 1), np.float32)}
        return obs, success.astype(np.float32), success, done & ~success, {"is_success": success}


class _ZeroLearner:
    def act(self, obs, deterministic):
        return np.zeros((len(obs["x"]), 1), np.float32)


def test_evaluation_does_not_favour_short_episodes():
    # The old protocol (first 8 episodes to finish) counted only the 1-step successes: 8/8.
    result = evaluate_wrapper(_LengthBiasedEnv(), _ZeroLearner(), episodes=8)
    assert result["success_rate"] == 0.5
    assert result["mean_length"] == (1 + 1 + 10 + 10) / 4  # each env's quota of 2 episodes: 1, 1, 10, 10 steps


def test_obs_normalization_is_fit_once_and_saved_with_the_actor():
    shapes = {"pos": (3,)}
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[16]), shapes, action_dim=2)
    obs = {"pos": torch.tensor([[0.50, 0.0, 0.02], [0.60, 0.1, 0.02], [0.55, -0.1, 0.02]])}
    learner.fit_obs_normalization(obs)
    for net in (learner.actor, learner.actor_target, learner.critic, learner.critic_target):
        torch.testing.assert_close(net.encoder.shift, obs["pos"].mean(0))
    feats = (obs["pos"] - learner.actor.encoder.shift) / learner.actor.encoder.scale
    assert feats[:, :2].abs().max() > 0.5  # cm-scale differences become O(1) inputs
    # the constant third feature is not blown up by a near-zero std
    assert torch.all(learner.actor.encoder.scale[2] >= 1e-2)
    actor = Actor(shapes, 2, [16], stochastic=False)
    actor.load_state_dict(learner.actor.state_dict())
    torch.testing.assert_close(actor.encoder.scale, learner.actor.encoder.scale)
    # actors saved before normalization existed still load (identity standardisation)
    old = {k: v for k, v in learner.actor.state_dict().items() if not k.startswith("encoder.")}
    fresh = Actor(shapes, 2, [16], stochastic=False)
    fresh.load_state_dict(old)
    assert torch.all(fresh.encoder.scale == 1)


def test_actor_l2_keeps_a_residual_actor_at_zero_when_q_is_flat():
    shapes = {"s": (2,)}
    cfg = LearnerConfig(algo="td3", hidden=[16], actor_l2=1.0, actor_lr=1e-2, zero_init_actor=False)
    learner = OffPolicyLearner(cfg, shapes, action_dim=2, seed=0)
    for p in learner.critic.parameters():  # a critic that ignores the action: Q = const
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        learner.critic.net[-1].bias.fill_(1.0)
    obs = {"s": torch.randn(64, 2)}
    before = learner.actor.mode(obs).abs().mean().item()
    for _ in range(200):
        learner.update_actor(obs)
    assert learner.actor.mode(obs).abs().mean().item() < 0.2 * before


def test_bc_weight_pulls_only_the_demonstration_rows_toward_their_actions():
    shapes = {"s": (2,)}
    cfg = LearnerConfig(algo="td3", hidden=[32], bc_weight=10.0, actor_lr=1e-2, zero_init_actor=True)
    learner = OffPolicyLearner(cfg, shapes, action_dim=2, seed=0)
    for p in learner.critic.parameters():  # Q ignores the action: only the BC term moves the actor
        torch.nn.init.zeros_(p)
    obs = {"s": torch.randn(64, 2)}
    target = torch.full((64, 2), 0.5)
    demo = torch.arange(64) < 32
    for _ in range(300):
        stats = learner.update_actor(obs, target, demo)
    assert stats["bc_loss"] < 1e-2
    assert torch.allclose(learner.actor.mode({"s": obs["s"][:32]}), target[:32], atol=0.05)
    off = LearnerConfig(algo="td3", hidden=[32], actor_lr=1e-2, zero_init_actor=True)  # bc_weight 0: no pull
    plain = OffPolicyLearner(off, shapes, action_dim=2, seed=0)
    for p in plain.critic.parameters():
        torch.nn.init.zeros_(p)
    for _ in range(50):
        assert "bc_loss" not in plain.update_actor(obs, target, demo)
    assert plain.actor.mode(obs).abs().max() < 1e-6
