"""A teleop session on the real PandaLift env, driven by scripted key presses, records a dataset."""

from __future__ import annotations

import numpy as np

from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.repair import verify
from robolearn.teleop.keyboard import ScriptedKeys
from robolearn.teleop.record import TeleopConfig, record_teleop


def test_keyboard_session_records_labels_and_interventions(tmp_path):
    keys = (
        ["\n", "w", "w", "r", " ", "", "y"]  # episode 0: 6 recorded steps (from the Enter), success
        + ["\n", "a", "", "x"]  # episode 1: discarded
        + ["\n", "d", "", "", "n"]  # episode 2 (saved as 1): marked failure
        + ["\n", "w", "Q"]  # quit while recording: discarded
    )
    cfg = TeleopConfig(out=str(tmp_path / "tele"), viewer="off", max_step=0.01)
    result = record_teleop(cfg, source=ScriptedKeys(keys), extra_devices=[], realtime=False, max_steps=100)
    assert (result.committed, result.successes, result.discarded) == (2, 1, 2)
    ds = EpisodeDataset(tmp_path / "tele")
    assert [r.success for r in ds.records] == [True, False]
    assert [r.length for r in ds.records] == [6, 4]
    ep = ds.episode(0)
    assert ep.intervention.all()  # no base policy: the person is always in control
    np.testing.assert_allclose(ep.action[0], [0, 0, 0, 0, 0])  # no key yet: hold still
    np.testing.assert_allclose(ep.action[1], [0.01, 0, 0, 0, 0], atol=1e-7)
    assert ep.action[3, 4] == 0.0 and ep.action[4, 4] == 1.0  # gripper closed by the space key
    assert ds.records[0].meta["source"] == "teleop" and ds.info.extra["device"] == "keyboard"
    assert verify(tmp_path / "tele").findings == []


def test_takeover_of_a_base_policy_is_flagged_per_step(tmp_path):
    keys = ["\n", "", "", "w", "", "", "", "", "", "n", "Q"]
    cfg = TeleopConfig(out=str(tmp_path / "hil"), viewer="off", policy="expert")
    record_teleop(cfg, source=ScriptedKeys(keys), extra_devices=[], realtime=False, max_steps=50)
    ep = EpisodeDataset(tmp_path / "hil").episode(0)
    # steps 0-2 policy, 3-5 the key press (held 3 steps), then the policy again until "n"
    assert ep.intervention.tolist() == [False, False, False, True, True, True, False, False, False]
    assert ep.record.interventions == 3
