"""Writer/reader round trip, resume, locking, bad input, and normalization statistics."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from dataset_helpers import episode_arrays, make_info, write_dataset

from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetError
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.writer import EpisodeWriter


def test_round_trip_preserves_every_value(tmp_path):
    arrays = write_dataset(tmp_path / "ds", [5, 9], image=True, success=[True, False])
    ds = EpisodeDataset(tmp_path / "ds")
    assert len(ds) == 2 and ds.num_steps == 14 and ds.num_success == 1
    for i, a in enumerate(arrays):
        ep = ds.episode(i)
        for key in ("joint_pos", "gripper", "pixels/front"):
            np.testing.assert_array_equal(ep.obs[key], a[key])
        np.testing.assert_array_equal(ep.action, a["action"])
        assert ep.obs["pixels/front"].dtype == np.uint8
        np.testing.assert_array_equal(ep.reward, np.arange(len(ep), dtype=np.float32))
        np.testing.assert_array_equal(ep.intervention, np.arange(len(ep)) % 2 == 0)
        np.testing.assert_allclose(ep.timestamp, np.arange(len(ep)) / 20.0)
        assert ep.record.interventions == int((np.arange(len(ep)) % 2 == 0).sum())
    assert [r.success for r in ds.records] == [True, False]


def test_stats_match_numpy_over_any_subset(tmp_path):
    arrays = write_dataset(tmp_path / "ds", [5, 9, 3], image=True)
    ds = EpisodeDataset(tmp_path / "ds")
    for subset in ([0, 1, 2], [1, 2]):
        stats = ds.stats(subset)
        for key in ("joint_pos", "action"):
            x = np.concatenate([arrays[i][key] for i in subset]).astype(np.float64)
            np.testing.assert_allclose(stats[key]["mean"], x.mean(0), atol=1e-9)
            np.testing.assert_allclose(stats[key]["std"], x.std(0), atol=1e-9)
            np.testing.assert_allclose(stats[key]["min"], x.min(0))
            np.testing.assert_allclose(stats[key]["max"], x.max(0))
        px = np.concatenate([arrays[i]["pixels/front"] for i in subset]).reshape(-1, 3) / 255.0
        np.testing.assert_allclose(stats["pixels/front"]["mean"], px.mean(0), atol=1e-9)
        assert stats["pixels/front"]["mean"].shape == (3,)
    assert (tmp_path / "ds/meta/stats.json").is_file()


def _hashes(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "data").iterdir())}


def test_resume_appends_and_keeps_earlier_files(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [4, 6])
    before = _hashes(root)
    write_dataset(root, [3], start=2)
    ds = EpisodeDataset(root)
    assert [r.length for r in ds.records] == [4, 6, 3]
    assert [r.seed for r in ds.records] == [0, 1, 2]
    after = _hashes(root)
    assert all(after[name] == digest for name, digest in before.items())


def test_append_with_other_features_is_refused(tmp_path):
    write_dataset(tmp_path / "ds", [2])
    other = make_info()
    other.observation["joint_pos"] = Feature((4,))
    with pytest.raises(DatasetError, match="joint_pos"):
        EpisodeWriter(tmp_path / "ds", other)


def test_second_writer_is_locked_out(tmp_path):
    with EpisodeWriter(tmp_path / "ds", make_info()):
        with pytest.raises(DatasetError, match="another process"):
            EpisodeWriter(tmp_path / "ds")


def test_bad_steps_name_the_problem(tmp_path):
    with EpisodeWriter(tmp_path / "ds", make_info(image=True)) as w:
        w.begin_episode()
        a = episode_arrays(0, 1, image=True)
        good = {k: a[k][0] for k in ("joint_pos", "gripper", "pixels/front")}
        with pytest.raises(DatasetError, match="'joint_pos' has shape"):
            w.add_step({**good, "joint_pos": np.zeros(5)}, a["action"][0])
        with pytest.raises(DatasetError, match="missing feature 'gripper'"):
            w.add_step({k: v for k, v in good.items() if k != "gripper"}, a["action"][0])
        with pytest.raises(DatasetError, match="uint8"):
            w.add_step({**good, "pixels/front": good["pixels/front"].astype(np.float32)}, a["action"][0])
        with pytest.raises(DatasetError, match="NaN"):
            w.add_step(good, np.array([np.nan, 0.0]))
        with pytest.raises(DatasetError, match="empty episode"):
            w.end_episode()
        w.discard_episode()
    assert len(EpisodeDataset(tmp_path / "ds")) == 0
    with pytest.raises(DatasetError, match="no dataset"):
        EpisodeDataset(tmp_path / "missing")


def test_bulk_add_steps_equals_step_by_step(tmp_path):
    info = make_info()
    a = episode_arrays(3, 7)
    with EpisodeWriter(tmp_path / "ds", info) as w:
        w.begin_episode()
        w.add_steps({k: a[k] for k in info.observation}, a["action"], reward=np.arange(7),
                    is_success=np.arange(7) == 6)
        rec = w.end_episode()
    assert rec.success and rec.length == 7
    ep = EpisodeDataset(tmp_path / "ds").episode(0)
    np.testing.assert_array_equal(ep.obs["joint_pos"], a["joint_pos"])
    np.testing.assert_array_equal(ep.action, a["action"])
