"""HIL-SERL / RLIF / HG-DAgger: rewards, buffer routing and real learner updates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from robolearn.hil.modes import MODES, TransitionBuilder, mode_spec, mode_updates, route
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.replay import ReplayBuffer

torch.set_num_threads(1)

SHAPES = {"x": (3,)}


def push_episode(builder: TransitionBuilder, takeovers: list[bool], env_reward_at_end: float = 1.0) -> list:
    """One env, one episode of len(takeovers) steps; takeover[t] = a takeover begins at step t."""
    out, n = [], len(takeovers)
    for t in range(n):
        last = t == n - 1
        b = builder.push({"x": np.full((1, 3), t, np.float32)}, np.full((1, 2), 0.1 * t, np.float32),
                         np.array([env_reward_at_end if last else 0.0]), np.array([last]), np.array([False]),
                         {"x": np.full((1, 3), t + 1, np.float32)}, np.array([takeovers[t]]), np.array([takeovers[t]]))
        out.append(b)
    out.append(builder.flush())
    return [b for b in out if b is not None]


def test_rlif_penalises_only_the_step_before_a_takeover() -> None:
    builder = TransitionBuilder(mode_spec("rlif"), 1, n_step=1, gamma=0.9)
    batches = push_episode(builder, [False, False, True, False, False, True])
    reward = np.concatenate([b["reward"] for b in batches])
    assert reward.tolist() == [0.0, -1.0, 0.0, 0.0, -1.0, 0.0]  # no task reward, even at the success
    assert np.concatenate([b["intervened"] for b in batches]).tolist() == [False, False, True, False, False, True]
    first = batches[0]
    assert first["action"].shape == (1, 2) and first["obs"]["x"][0, 0] == 0


def test_hil_serl_keeps_the_task_reward_and_no_penalty_crosses_episodes() -> None:
    builder = TransitionBuilder(mode_spec("hil-serl"), 1, n_step=1, gamma=0.9)
    reward = np.concatenate([b["reward"] for b in push_episode(builder, [False, True, False])])
    assert reward.tolist() == [0.0, 0.0, 1.0]
    rlif = TransitionBuilder(mode_spec("rlif"), 1, n_step=1, gamma=0.9)
    push_episode(rlif, [False, False])
    second = push_episode(rlif, [True, False])  # a takeover at an episode's first step penalises nothing
    assert np.concatenate([b["reward"] for b in second]).tolist() == [0.0, 0.0]


def test_routing_per_mode() -> None:
    batch = {"obs": {"x": np.zeros((4, 3), np.float32)}, "next_obs": {"x": np.zeros((4, 3), np.float32)},
             "action": np.zeros((4, 2), np.float32), "reward": np.zeros(4, np.float32),
             "discount": np.ones(4, np.float32), "intervened": np.array([True, False, True, False])}
    sizes = {}
    for name in MODES:
        online, demo = ReplayBuffer(SHAPES, 2, 10), ReplayBuffer(SHAPES, 2, 10)
        route(mode_spec(name), batch, online, demo)
        sizes[name] = (len(online), len(demo))
    assert sizes == {"hil-serl": (4, 2), "rlif": (4, 0), "hg-dagger": (0, 2)}
    with pytest.raises(ValueError, match="choose from hil-serl, rlif, hg-dagger"):
        mode_spec("dagger")


def test_real_updates_rl_and_bc() -> None:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    online, demo = ReplayBuffer(SHAPES, 2, 500), ReplayBuffer(SHAPES, 2, 500)
    obs = rng.normal(size=(200, 3)).astype(np.float32)
    target = np.tanh(obs[:, :2]).astype(np.float32)  # the "human" action: a function of the state
    for buf in (online, demo):
        buf.add({"x": obs}, target, rng.random(200), np.full(200, 0.9), {"x": obs})
    cfg = LearnerConfig(algo="td3", hidden=[32, 32], batch_size=32, drq_pad=0)
    rl = OffPolicyLearner(cfg, SHAPES, 2, seed=0)
    stats = mode_updates(mode_spec("hil-serl"), rl, online, demo, 5, rng, min_size=64)
    assert rl.num_updates == 5 and np.isfinite(stats["critic_loss"]) and "bc_loss" not in stats
    with_bc = OffPolicyLearner(dataclasses.replace(cfg, bc_weight=1.0), SHAPES, 2, seed=0)
    stats = mode_updates(mode_spec("hil-serl"), with_bc, online, demo, 2, rng, min_size=64)
    assert np.isfinite(stats["bc_loss"])  # the demonstration rows of the RLPD batch reached the actor
    bc = OffPolicyLearner(cfg, SHAPES, 2, seed=0)
    first = mode_updates(mode_spec("hg-dagger"), bc, online, demo, 1, rng, min_size=64)["bc_loss"]
    last = mode_updates(mode_spec("hg-dagger"), bc, online, demo, 150, rng, min_size=64)["bc_loss"]
    assert last < 0.3 * first
    assert mode_updates(mode_spec("hg-dagger"), bc, online, ReplayBuffer(SHAPES, 2, 10), 5, rng) == {}
