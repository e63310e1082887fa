"""V-GPS: K candidates from a real diffusion base with its observation history, the learned Q ranks them, the
refined policy saves and loads through the method registry, and the IQL value fits an upper expectile."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))
from policy_helpers import SHAPES, small_config, stats  # noqa: E402

from robolearn.policies.checkpoint import make_policy  # noqa: E402
from robolearn.refine.noise_steering import ZeroNoisePolicy  # noqa: E402
from robolearn.refine.value_guided import (  # noqa: E402
    CANDIDATES_KEY,
    CandidateScorer,
    TiledBase,
    ValueGuidedLearner,
    load_scorer,
)
from robolearn.rl.learner import LearnerConfig  # noqa: E402
from robolearn.rl.networks import CriticEnsemble  # noqa: E402


def _diffusion_base():
    policy = make_policy(small_config("diffusion", denoiser="mlp"))
    policy.set_stats(stats())
    policy.eval()
    return policy


def _obs(rng: np.random.Generator, b: int) -> dict[str, np.ndarray]:
    return {k: rng.uniform(-1, 1, (b, *s)).astype(np.float32) for k, s in SHAPES.items()}


def test_tiled_candidates_keep_each_envs_history_and_include_the_zero_noise_chunk():
    """Candidate 0 of every env is the chunk the zero-noise base computes on that env's own observation
    stream (history of 2 frames, a partial reset in between); the others differ."""
    base = _diffusion_base()
    tiled = TiledBase(copy.deepcopy(base), k=4, noise_scale=1.0, include_zero=True, seed=0)
    zero = ZeroNoisePolicy(copy.deepcopy(base))
    rng = np.random.default_rng(0)
    for step in range(4):
        obs = _obs(rng, 3)
        if step == 2:
            tiled.reset([1])
            zero.reset([1])
        if step % 2:
            tiled.observe(obs)
            zero.observe(obs)
            continue
        cands = tiled.candidates(obs)
        assert cands.shape == (3, 4, 4, 3)
        np.testing.assert_allclose(cands[:, 0], zero.act(obs), atol=1e-5)
        assert not np.allclose(cands[:, 1], cands[:, 0])


def test_the_learner_acts_on_the_best_ranked_candidate_and_the_scorer_reloads():
    shapes = {"x": (4,)}
    cfg = LearnerConfig(algo="td3", hidden=[16], num_critics=2)
    learner = ValueGuidedLearner(cfg, shapes, k=3, chunk_dim=2, expectile=0.9, epsilon=0.0)
    obs = {"x": np.zeros((5, 4), np.float32), CANDIDATES_KEY: np.random.default_rng(1).uniform(-1, 1, (5, 3, 2))}
    scores = learner.actor.scores({k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()})
    action = learner.act(obs, deterministic=True)
    assert action.shape == (5, 3) and set(np.unique(action)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(action.argmax(-1), scores.argmax(-1).numpy())
    again = load_scorer(learner.actor.state_dict(), shapes, 3, [16])
    torch.testing.assert_close(again.scores({k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()}),
                               scores)
    with pytest.raises(ValueError, match="not a V-GPS Q-function"):
        load_scorer({"net.0.weight": torch.zeros(3, 3)}, shapes, 3, [16])  # another method's actor
    learner.epsilon = 1.0  # always a uniformly random candidate while collecting
    picks = {int(learner.act(obs, deterministic=False, rng=np.random.default_rng(s)).argmax(-1)[0]) for s in range(20)}
    assert picks == {0, 1, 2}


def test_value_fits_an_upper_expectile_of_q():
    """One state, two actions whose returns are 0 and 1: Q learns both and V(s) sits near the 0.9 expectile
    (0.9 of the way to the better action), well above the mean."""
    torch.manual_seed(0)
    shapes = {"x": (1,)}
    learner = ValueGuidedLearner(LearnerConfig(algo="td3", hidden=[32], num_critics=2, critic_lr=3e-3, tau=0.05),
                                 shapes, k=2, chunk_dim=1, expectile=0.9, epsilon=0.0)
    n = 64
    action = torch.tensor([[-1.0], [1.0]]).repeat(n // 2, 1)
    batch = {"obs": {"x": torch.zeros(n, 1)}, "next_obs": {"x": torch.zeros(n, 1)}, "action": action,
             "reward": (action[:, 0] > 0).float(), "discount": torch.zeros(n)}
    for _ in range(1500):
        learner.update(batch)
    v = float(learner.v(batch["obs"])[0].detach())
    assert 0.75 < v < 0.97
    q = learner.q_values(learner.critic, batch["obs"], action).mean(0)
    assert float(q[action[:, 0] > 0].mean()) > 0.9 and float(q[action[:, 0] < 0].mean()) < 0.1


@pytest.mark.slow
def test_vgps_refines_saves_and_loads_as_a_policy(tmp_path):
    from test_refine_training import TinyGenerativePolicy, small_cfg

    from robolearn.refine.loop import train
    from robolearn.refine.methods import METHODS
    from robolearn.refine.saved import read_refined
    from robolearn.refine.value_guided import ValueGuidedPolicy
    from robolearn.wiring import refine_sources

    cfg = small_cfg("vgps", steps=240, random_steps=80, demos="expert:noise=0", demo_episodes=2,
                    params={"candidates": 4})
    result = train(cfg, refine_sources(cfg, TinyGenerativePolicy), run_dir=tmp_path, progress=False)
    assert result.updates > 0 and all(0.0 <= e["success_rate"] <= 1.0 for e in result.evals)
    meta = read_refined(tmp_path / "policy")
    scorer = METHODS["vgps"].load_actor(tmp_path / "policy", meta)
    assert isinstance(scorer, CandidateScorer) and isinstance(scorer.critic, CriticEnsemble)
    refined = METHODS["vgps"].policy(TinyGenerativePolicy(), scorer, _panda_space(), METHODS["vgps"].params_type())
    assert isinstance(refined, ValueGuidedPolicy)
    obs = {k: np.zeros((2, *s), np.float32) for k, s in meta.obs_shapes.items()}
    obs["ee_pos"][:] = 0.1
    assert refined.act(obs).shape == (2, 2, 5)


def _panda_space():
    from robolearn.policy_factory import action_space

    return action_space("robolearn/PandaLift-v0")
