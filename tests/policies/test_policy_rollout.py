"""Rollout evaluation feeds a chunk policy every control step: ``act`` every ``Ta`` steps, ``observe`` between."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.evaluate import evaluate

TA = 4


class RecordingPolicy:
    """Random actions in chunks of ``TA``; records every observation it is given, per env row."""

    noise_shape = None

    def __init__(self, num_envs: int) -> None:
        self.rng = np.random.default_rng(0)
        self.calls: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(num_envs)]
        self.episodes: list[list[list[tuple[str, np.ndarray]]]] = [[] for _ in range(num_envs)]

    def _record(self, kind: str, obs) -> None:
        for i, row in enumerate(obs["ee_pos"]):
            self.calls[i].append((kind, np.array(row)))

    def act(self, obs, noise=None) -> np.ndarray:
        self._record("act", obs)
        b = len(obs["ee_pos"])
        return self.rng.uniform(-1, 1, (b, TA, 5)).astype(np.float32) * np.array([0.02, 0.02, 0.02, 0.1, 1.0])

    def observe(self, obs) -> None:
        self._record("observe", obs)

    def reset(self, env_ids=None) -> None:
        for i in range(len(self.calls)) if env_ids is None else env_ids:
            if self.calls[i]:
                self.episodes[i].append(self.calls[i])
            self.calls[i] = []


def _collapse_idle(calls: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Drop the leading observes of an episode that restarted mid-chunk (the env idles until replanning)."""
    k = 0
    while k < len(calls) and calls[k][0] == "observe":
        assert np.array_equal(calls[k][1], calls[0][1]), "an idle env must repeat its reset observation"
        k += 1
    return calls[k:]


@pytest.mark.parametrize("num_envs", [1, 2])
def test_evaluate_feeds_every_step_to_act_or_observe(num_envs):
    policy = RecordingPolicy(num_envs)
    result = evaluate(policy, "robolearn/PandaLift-v0", episodes=2 * num_envs, seed=0, num_envs=num_envs,
                      progress=False)
    episodes = [ep for row in policy.episodes for ep in row]
    assert len(episodes) == result.episodes
    lengths = sorted(result.lengths)
    seen = []
    for ep in episodes:
        calls = _collapse_idle(ep)
        kinds = [k for k, _ in calls]
        # act on steps 0, Ta, 2Ta...; observe on every step in between: one call per executed action
        assert kinds == ["act" if j % TA == 0 else "observe" for j in range(len(calls))]
        positions = np.stack([p for _, p in calls])
        assert (np.abs(np.diff(positions, axis=0)).max(axis=1) > 0).all(), "a step was observed twice"
        seen.append(len(calls))
    assert sorted(seen) == lengths
