"""LeRobot v3.0 export / import round trip, readable with plain pyarrow and pandas."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from dataset_helpers import write_dataset

from robolearn.datasets.format import DatasetError
from robolearn.datasets.lerobot import export_lerobot, import_lerobot
from robolearn.datasets.reader import EpisodeDataset


@pytest.mark.parametrize("images", ["raw", "png", "jpeg:90"])
def test_export_import_round_trip(tmp_path, images):
    write_dataset(tmp_path / "ds", [5, 8, 3], image=True, success=[True, False, True], images=images)
    out = export_lerobot(tmp_path / "ds", tmp_path / "lr")
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3 and info["total_frames"] == 16
    assert info["features"]["observation.images.front"]["dtype"] == "video"
    assert info["features"]["observation.joint_pos"]["shape"] == [3]
    data = pq.read_table(out / "data/chunk-000/file-000.parquet").to_pandas()
    assert len(data) == 16 and data["episode_index"].tolist() == [0] * 5 + [1] * 8 + [2] * 3
    np.testing.assert_allclose(data["timestamp"][:5], np.arange(5) / 20.0)
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pandas()
    assert episodes["length"].tolist() == [5, 8, 3]
    assert episodes["videos/observation.images.front/from_timestamp"].tolist() == pytest.approx([0, 0.25, 0.65])
    assert (out / "videos/observation.images.front/chunk-000/file-000.mp4").stat().st_size > 0
    stats = json.loads((out / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)

    back = EpisodeDataset(import_lerobot(out, tmp_path / "back"))
    orig = EpisodeDataset(tmp_path / "ds")
    assert [r.success for r in back.records] == [True, False, True]
    for i in range(3):
        a, b = orig.episode(i), back.episode(i)
        for key in ("joint_pos", "gripper"):
            np.testing.assert_array_equal(a.obs[key], b.obs[key])
        for name in ("action", "reward", "is_success", "intervention", "timestamp"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        err = np.abs(a.obs["pixels/front"].astype(int) - b.obs["pixels/front"])
        assert err.mean() < 3.0, err.mean()  # lossy video (after JPEG, for jpeg), within codec tolerance
    assert back.info.observation["joint_pos"].units == "rad"
    assert back.info.images == orig.info.images  # the import stores frames as the exported dataset did
    assert EpisodeDataset(import_lerobot(out, tmp_path / "raw", images="raw")).info.images.codec == "raw"


def test_export_refuses_a_non_empty_target_and_import_needs_info(tmp_path):
    write_dataset(tmp_path / "ds", [2])
    (tmp_path / "lr").mkdir()
    (tmp_path / "lr/x").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        export_lerobot(tmp_path / "ds", tmp_path / "lr")
    with pytest.raises(DatasetError, match="info.json is missing"):
        import_lerobot(tmp_path / "lr", tmp_path / "back")
    with pytest.raises(DatasetError, match="only LeRobot v3"):
        import_lerobot(tmp_path / "ds", tmp_path / "back")
