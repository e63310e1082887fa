"""The simulated human's trigger rule (delay, duration, rate, threshold) and its config checks."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.hil.sim_human import SimHuman, SimHumanConfig

LOW, HIGH = np.full(2, -1.0, np.float32), np.full(2, 1.0, np.float32)


class ConstantPolicy:
    """A (B, 1, 2) constant action; counts resets."""

    noise_shape = None

    def __init__(self, value: float) -> None:
        self.value, self.resets = value, 0

    def act(self, obs, noise=None):
        return np.full((len(obs["x"]), 1, 2), self.value, np.float32)

    def reset(self, env_ids=None):
        self.resets += 1


def human(**kw) -> SimHuman:
    cfg = SimHumanConfig(**{"state_threshold": 0.0, "action_smoothing": 1, **kw})
    return SimHuman(cfg, ConstantPolicy(0.0), ConstantPolicy(0.5), LOW, HIGH, num_envs=2)


def run(h: SimHuman, proposed: np.ndarray, steps: int) -> np.ndarray:
    obs = {"x": np.zeros((2, 1), np.float32)}
    return np.stack([h.decide(obs, proposed)[0] for _ in range(steps)])


def test_takes_over_after_delay_for_duration_only_where_the_action_deviates() -> None:
    h = human(action_threshold=0.3, delay=2, duration=3)
    proposed = np.array([[0.9, 0.9], [0.1, 0.0]], np.float32)  # env 0 deviates (0.9), env 1 does not (0.05)
    masks = run(h, proposed, 8)
    assert masks[:, 1].sum() == 0
    # noticed at step 0, control from step 2 for 3 steps, then noticed again at once (delay 2 again)
    assert masks[:, 0].tolist() == [False, False, True, True, True, False, False, True]
    _, action = h.decide({"x": np.zeros((2, 1))}, proposed)
    assert np.allclose(action, 0.5)  # the executing "hand", not the judge


def test_rate_draws_are_seeded_and_stall_rule_fires() -> None:
    a = run(human(action_threshold=0.3, rate=0.3, duration=1, seed=4), np.ones((2, 2), np.float32), 40)
    b = run(human(action_threshold=0.3, rate=0.3, duration=1, seed=4), np.ones((2, 2), np.float32), 40)
    assert np.array_equal(a, b) and 0 < a.mean() < 0.6
    stall = run(human(action_threshold=0.0, stall_steps=5, duration=2), np.zeros((2, 2), np.float32), 12)
    assert stall[:5].sum() == 0 and stall[5:].all()  # a stall takeover holds on past its duration
    handback = run(human(action_threshold=0.0, stall_steps=5, duration=2, delay=1, stall_hold=False),
                   np.zeros((2, 2), np.float32), 11)
    assert handback[:, 0].tolist() == [False] * 6 + [True, True, False, True, True]


def test_reset_forgets_an_episode_and_max_per_episode() -> None:
    h = human(action_threshold=0.3, duration=1, max_per_episode=2)
    masks = run(h, np.ones((2, 2), np.float32), 10)
    assert masks[:, 0].sum() == 2
    h.reset([0])
    assert run(h, np.ones((2, 2), np.float32), 1)[0, 0] and not run(h, np.ones((2, 2), np.float32), 1)[0, 1]


@pytest.mark.parametrize("bad", [{"rate": 0.0}, {"noise": -1.0}, {"duration": 0}, {"delay": -1}])
def test_bad_config_is_rejected_by_name(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SimHumanConfig(**bad).validate()


def test_the_person_demonstrates_the_first_episodes_of_the_run() -> None:
    h = human(action_threshold=0.0, demo_episodes=3)  # 2 envs: episodes 0 and 1, then 2 (env 0), 3 (env 1)
    still = np.zeros((2, 2), np.float32)
    assert run(h, still, 4).all()
    h.reset([0])
    assert run(h, still, 1)[0].tolist() == [True, True]
    h.reset([1])
    assert run(h, still, 1)[0].tolist() == [True, False]
    h.reset([0])
    assert not run(h, still, 1).any()
