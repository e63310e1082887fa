"""n-step returns across a batch with terminations vs time-outs; REDQ targets; HL-Gauss; DrQ shift."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robolearn.rl.augment import random_shift
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.losses import HLGauss, HLGaussConfig
from robolearn.rl.replay import NStepAccumulator, ReplayBuffer, sample_mixed

GAMMA = 0.9


def _obs(values):
    return {"x": np.asarray(values, np.float32)[:, None]}


def test_nstep_terminations_bootstrap_only_on_timeouts():
    """Env 0 terminates at t=2, env 1 is truncated (time-out) at t=2, env 2 runs on; n = 3."""
    acc = NStepAccumulator(num_envs=3, n_step=3, gamma=GAMMA)
    rewards = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0])]
    terms = [np.array([False] * 3), np.array([False] * 3), np.array([True, False, False])]
    truncs = [np.array([False] * 3), np.array([False] * 3), np.array([False, True, False])]
    out = []
    for t in range(3):
        res = acc.push(_obs([t, 10 + t, 20 + t]), np.full((3, 1), t, np.float32), rewards[t], terms[t], truncs[t],
                       _obs([t + 1, 10 + t + 1, 20 + t + 1]))
        if res is not None:
            out += list(zip(res["obs"]["x"][:, 0], res["reward"], res["discount"], res["next_obs"]["x"][:, 0],
                            strict=True))
    got = {float(o): (float(r), float(d), float(n)) for o, r, d, n in out}
    # env 0 (terminated): every queued step flushed, no bootstrap
    assert got[0.0] == pytest.approx((0 + GAMMA * 0 + GAMMA**2 * 1, 0.0, 3.0))
    assert got[1.0] == pytest.approx((0 + GAMMA * 1, 0.0, 3.0))
    assert got[2.0] == pytest.approx((1.0, 0.0, 3.0))
    # env 1 (time-out): bootstrap from the final observation with gamma^k
    assert got[10.0] == pytest.approx((1 + GAMMA * 1 + GAMMA**2 * 1, GAMMA**3, 13.0))
    assert got[11.0] == pytest.approx((1 + GAMMA * 1, GAMMA**2, 13.0))
    assert got[12.0] == pytest.approx((1.0, GAMMA, 13.0))
    # env 2 (running): exactly one full 3-step transition
    assert got[20.0] == pytest.approx((2 + GAMMA * 2 + GAMMA**2 * 2, GAMMA**3, 23.0))
    assert len(out) == 7
    assert all(len(q) == 0 for q in acc.queues[:2]) and len(acc.queues[2]) == 2


def test_rlpd_sampling_is_half_offline():
    shapes = {"x": (1,)}
    online, offline = ReplayBuffer(shapes, 1, 100), ReplayBuffer(shapes, 1, 100)
    online.add(_obs(np.zeros(50)), np.zeros((50, 1)), np.zeros(50), np.ones(50), _obs(np.zeros(50)))
    offline.add(_obs(np.ones(50)), np.ones((50, 1)), np.zeros(50), np.ones(50), _obs(np.ones(50)))
    batch = sample_mixed(online, offline, 64, np.random.default_rng(0))
    assert batch["action"].sum() == 32 and "offline" not in batch
    flagged = sample_mixed(online, offline, 64, np.random.default_rng(0), flag=True)
    assert np.array_equal(flagged["offline"], flagged["action"][:, 0] == 1)  # the mask marks the offline rows
    empty = ReplayBuffer(shapes, 1, 100)
    assert not sample_mixed(online, empty, 8, np.random.default_rng(0), flag=True)["offline"].any()


def test_redq_target_is_min_over_a_random_pair():
    cfg = LearnerConfig(algo="td3", hidden=[16], num_critics=5, num_min=2, target_noise=0.0)
    learner = OffPolicyLearner(cfg, {"x": (3,)}, action_dim=2, seed=0)
    obs = {"x": torch.randn(7, 3)}
    state = learner.gen.get_state()
    v = learner.target_value(obs)
    learner.gen.set_state(state)
    a = learner.actor_target.mode(obs)
    torch.randn(a.shape, generator=learner.gen)  # the (zero-scaled) smoothing noise draw
    heads = torch.randperm(5, generator=learner.gen)[:2]
    q = learner.q_values(learner.critic_target, obs, a)
    assert torch.allclose(v, q[heads].min(0).values)
    assert (v <= q.max(0).values).all()


def test_sac_target_has_the_entropy_bonus_only_with_backup_entropy():
    obs = {"x": torch.randn(7, 3)}
    values = {}
    for backup in (True, False):
        cfg = LearnerConfig(algo="sac", hidden=[16], num_critics=2, init_alpha=0.5, backup_entropy=backup)
        learner = OffPolicyLearner(cfg, {"x": (3,)}, action_dim=2, seed=0)
        state = learner.gen.get_state()
        values[backup] = learner.target_value(obs)
        learner.gen.set_state(state)
        a, logp = learner.actor.sample(obs, learner.gen)
        heads = torch.randperm(2, generator=learner.gen)[:2]
        q = learner.q_values(learner.critic_target, obs, a)[heads].min(0).values
        assert torch.allclose(values[backup], q - 0.5 * logp if backup else q, atol=1e-6)


def test_hl_gauss_value_round_trip():
    hl = HLGauss(HLGaussConfig(enabled=True, num_bins=101, v_min=-1.0, v_max=2.0))
    target = torch.tensor([-0.5, 0.0, 0.3, 1.7])
    logits = hl.target_probs(target).clamp_min(1e-12).log()
    assert torch.allclose(hl.value(logits), target, atol=1e-3)


def test_random_shift_keeps_shape_and_content_range():
    images = torch.randint(0, 255, (4, 16, 16, 3), dtype=torch.uint8)
    out = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert not torch.equal(out, images)
    assert torch.equal(random_shift(images, 0), images)


def test_bad_config_errors_are_clear():
    with pytest.raises(ValueError, match="num_min"):
        OffPolicyLearner(LearnerConfig(num_critics=2, num_min=3), {"x": (1,)}, 1)
    with pytest.raises(ValueError, match="num_critics"):
        OffPolicyLearner(LearnerConfig(num_critics=11, num_min=2), {"x": (1,)}, 1)
    with pytest.raises(ValueError, match="n_step"):
        NStepAccumulator(2, 0, 0.9)
