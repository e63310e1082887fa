"""The intervention wrapper on the real PandaPegInsert env: the person's action is executed and stored."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.hil.intervention import InterventionVecEnv
from robolearn.hil.sim_human import SimHumanConfig, TeleopIntervener
from robolearn.policy_factory import load_policy
from robolearn.refine.residual import ResidualVecEnv
from robolearn.sim.vector import make_vec_env
from robolearn.teleop.base import EEDeltaMapping
from robolearn.teleop.keyboard import KeyboardTeleop, ScriptedKeys
from robolearn.wiring import sim_human

ENV = "robolearn/PandaPegInsert-v0"


def residual(n: int) -> ResidualVecEnv:
    return ResidualVecEnv(make_vec_env(ENV, n, seed=3), load_policy("expert:noise=0.35", ENV, seed=3), 0.25)


def test_sim_human_takeovers_are_executed_and_flagged() -> None:
    # the policy pushes hard in +x: the clean-expert judge sees the deviation and takes over
    cfg = SimHumanConfig(noise=0.0, action_threshold=0.1, action_smoothing=1, state_threshold=0.0, duration=4,
                         delay=1)
    env = InterventionVecEnv(residual(2), sim_human(cfg, ENV, 2))
    env.reset(seed=3)
    push = np.tile(np.array([1.0, 1.0, 1.0, 1.0, 0.0], np.float32), (2, 1))  # 0.2 off in normalized units
    seen = []
    for _ in range(12):
        _, _, term, trunc, info = env.step(push)
        mask = info["intervention"]
        seen.append(mask.copy())
        assert info["intervention_action"].shape == (2, 5)
        assert np.isnan(info["intervention_action"][~mask]).all()
        np.testing.assert_allclose(info["intervention_action"][mask], info["executed"][mask])
        # what replay stores is the executed (human) action, normalized
        np.testing.assert_allclose(env.scaler.unnormalize(info["critic_action"]), info["executed"], atol=1e-6)
        if mask.any():
            assert not np.allclose(info["executed"][mask], info["proposed"][mask])
        assert (info["takeover"] <= mask).all()
    seen = np.array(seen)
    assert not seen[0].any()  # a delay of 1 step
    for i in range(2):  # then 4 steps of control in a row
        first = int(np.argmax(seen[:, i]))
        assert seen[:, i].any() and seen[first:first + 4, i].all()
    env.close()


def test_keyboard_takeover_keeps_the_gripper_and_labels_end_the_episode() -> None:
    from robolearn.hil.intervention import success_labeler_from_events

    keys = ScriptedKeys(["", "w", "w", "", "", "", "y"])
    person = TeleopIntervener(KeyboardTeleop(keys, EEDeltaMapping(), hold_steps=1))
    env = InterventionVecEnv(residual(1), person, success_labeler_from_events(person.take_events))
    env.reset(seed=0)
    flags, ends = [], []
    for _ in range(7):
        _, reward, term, trunc, info = env.step(np.zeros((1, 5), np.float32))
        flags.append(bool(info["intervention"][0]))
        ends.append((bool(term[0]), float(reward[0])))
        if info["intervention"][0]:
            assert info["executed"][0, 0] == pytest.approx(0.01) and info["executed"][0, 4] == 1.0
    assert flags == [False, True, True, False, False, False, False]
    assert ends[-1] == (True, 1.0) and info["is_success"][0] and info.get("labelled")


def test_labels_need_one_env() -> None:
    env = residual(2)
    with pytest.raises(ValueError, match="num_envs must be 1"):
        InterventionVecEnv(env, sim_human(SimHumanConfig(), ENV, 2), lambda: None)
    env.close()
