"""Evaluation through the batched env runs the serial schedule's episodes: same seeds, same outcomes, same calls.

The policy holds each chunk's action for ``Ta`` steps, adds noise from its own generator (so its outputs
depend on the order and the batches of its calls) and keeps per-env state (the scripted expert's phases):
identical successes, returns and lengths mean the batched env saw the same calls with the same batches.
"""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.evaluate import EnvCache, evaluate
from robolearn.policy_factory import load_policy

TA = 3


class NoisyChunkedExpert:
    """The noisy scripted expert's action held for ``TA`` steps, plus generator noise; logs its calls."""

    noise_shape = None

    def __init__(self, env_id: str) -> None:
        self.base = load_policy("expert:noise=0.5", env_id, seed=0)
        self.rng = np.random.default_rng(0)
        self.calls: list[tuple[str, np.ndarray]] = []

    def act(self, obs, noise=None) -> np.ndarray:
        self.calls.append(("act", {k: np.array(v) for k, v in obs.items()}))
        a = np.asarray(self.base.act(obs), np.float32)[:, :1]
        jitter = 0.01 * self.rng.standard_normal((a.shape[0], TA, a.shape[2])).astype(np.float32)
        return np.repeat(a, TA, axis=1) + jitter

    def observe(self, obs) -> None:
        self.calls.append(("observe", {k: np.array(v) for k, v in obs.items()}))

    def reset(self, env_ids=None) -> None:
        self.calls.append(("reset", {"env_ids": np.array([] if env_ids is None else env_ids)}))
        self.base.reset(env_ids)


@pytest.mark.parametrize("env_id", ["robolearn/PandaLift-v0", "robolearn/QuadHover-v0"])
def test_batched_evaluation_equals_serial(env_id) -> None:
    runs = {}
    for batched in (False, True):
        policy = NoisyChunkedExpert(env_id)
        result = evaluate(policy, env_id, episodes=11, seed=100, num_envs=4, progress=False, batched=batched)
        runs[batched] = (result, policy.calls)
    (serial, serial_calls), (batched, batched_calls) = runs[False], runs[True]
    assert serial.episodes == batched.episodes == 11
    assert serial.successes == batched.successes
    assert serial.seeds == batched.seeds and sorted(serial.seeds) == list(range(100, 111))
    assert serial.returns == batched.returns
    assert serial.lengths == batched.lengths
    assert len(serial_calls) == len(batched_calls)
    for (kind_s, obs_s), (kind_b, obs_b) in zip(serial_calls, batched_calls, strict=True):
        assert kind_s == kind_b and obs_s.keys() == obs_b.keys()
        assert all(np.array_equal(obs_s[k], obs_b[k]) for k in obs_s), kind_s


def test_cached_envs_are_reused_with_the_same_outcomes() -> None:
    env_id = "robolearn/PandaLift-v0"
    cache = EnvCache()
    try:
        first = evaluate(NoisyChunkedExpert(env_id), env_id, episodes=5, seed=7, num_envs=4, progress=False,
                         envs=cache)
        env = cache.get(next(iter(cache._envs)), lambda: None)
        again = evaluate(NoisyChunkedExpert(env_id), env_id, episodes=5, seed=7, num_envs=4, progress=False,
                         envs=cache)
        assert len(cache._envs) == 1 and cache.get(next(iter(cache._envs)), lambda: None) is env
        assert (first.successes, first.returns, first.lengths) == (again.successes, again.returns, again.lengths)
    finally:
        cache.close()


def test_only_the_shown_episodes_are_rendered(tmp_path) -> None:
    env_id = "robolearn/PandaLift-v0"
    result = evaluate(NoisyChunkedExpert(env_id), env_id, episodes=3, seed=0, num_envs=2, progress=False,
                      video_dir=tmp_path, videos=1)
    assert [p.name for p in result.videos] == ["episode_000.mp4"] and result.videos[0].stat().st_size > 0
