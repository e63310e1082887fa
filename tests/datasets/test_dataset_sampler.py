"""Training windows: padding at episode boundaries, batching, splits and success filtering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dataset_helpers import write_dataset

from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.sampler import WindowDataset, make_loader, select_episodes, split_episodes


def _reference(arrays, to: int, tp: int):
    """Brute-force windows, one per step: (obs joint_pos (To, 3), action (Tp, 2), pad (Tp,))."""
    out = []
    for a in arrays:
        n = len(a["action"])
        for t in range(n):
            obs = np.stack([a["joint_pos"][max(k, 0)] for k in range(t - to + 1, t + 1)])
            act = np.stack([a["action"][min(k, n - 1)] for k in range(t, t + tp)])
            pad = np.array([k >= n for k in range(t, t + tp)])
            out.append((obs, act, pad))
    return out


@pytest.mark.parametrize(("to", "tp"), [(1, 1), (2, 4), (3, 8)])
def test_windows_and_padding_match_the_reference(tmp_path, to, tp):
    arrays = write_dataset(tmp_path / "ds", [1, 2, 5, 7], image=True)
    windows = WindowDataset(tmp_path / "ds", obs_horizon=to, action_horizon=tp)
    ref = _reference(arrays, to, tp)
    assert len(windows) == len(ref) == 15
    batch = windows.__getitems__(list(range(len(ref))))
    for i, (obs, act, pad) in enumerate(ref):
        np.testing.assert_array_equal(batch["obs"]["joint_pos"][i].numpy(), obs)
        np.testing.assert_array_equal(batch["action"][i].numpy(), act)
        np.testing.assert_array_equal(batch["action_is_pad"][i].numpy(), pad)
    assert batch["obs"]["pixels/front"].shape == (15, to, 12, 16, 3)
    assert batch["obs"]["pixels/front"].dtype == torch.uint8
    assert batch["obs"]["joint_pos"].dtype == torch.float32 and batch["action"].dtype == torch.float32
    assert batch["action_is_pad"].dtype == torch.bool


def test_episode_start_repeats_first_obs_and_end_flags_padding(tmp_path):
    write_dataset(tmp_path / "ds", [4, 3])
    w = WindowDataset(tmp_path / "ds", obs_horizon=2, action_horizon=3)
    first = w[4]  # step 0 of episode 1: the previous obs is the same first obs, never episode 0's last
    assert first["obs"]["joint_pos"][:, 0].tolist() == [1.0, 1.0]
    assert first["obs"]["joint_pos"][:, 1].tolist() == [0.0, 0.0]
    last = w[3]  # step 3 of episode 0 (its last): one real action, then the last action repeated
    assert last["action"][:, 0].tolist() == [3.0, 3.0, 3.0]
    assert last["action_is_pad"].tolist() == [False, True, True]


def test_loader_yields_full_batches_reproducibly(tmp_path):
    write_dataset(tmp_path / "ds", [6, 6, 6])
    w = WindowDataset(tmp_path / "ds", obs_horizon=2, action_horizon=4, obs_keys=["joint_pos"])
    batches = list(make_loader(w, batch_size=4, seed=3))
    assert len(batches) == 4 and set(batches[0]["obs"]) == {"joint_pos"}
    assert batches[0]["obs"]["joint_pos"].shape == (4, 2, 3) and batches[0]["action"].shape == (4, 4, 2)
    again = next(iter(make_loader(w, batch_size=4, seed=3)))
    assert torch.equal(again["action"], batches[0]["action"])


def test_split_by_episode_and_success_filter(tmp_path):
    write_dataset(tmp_path / "ds", [3, 3, 3, 3, 3], success=[True, False, True, True, False])
    ds = EpisodeDataset(tmp_path / "ds")
    good = select_episodes(ds, only_success=True)
    assert good == [0, 2, 3]
    train, val = split_episodes(good, val_fraction=0.3, seed=0)
    assert sorted(train + val) == good and len(val) == 1 and not set(train) & set(val)
    assert split_episodes(good, 0.3, seed=0) == (train, val)
    w = WindowDataset(ds, episodes=val, obs_horizon=1, action_horizon=1)
    assert set(w.obs["joint_pos"][:, 0].tolist()) == {float(val[0])}
    with pytest.raises(ValueError, match="no episodes selected"):
        WindowDataset(ds, episodes=[])
