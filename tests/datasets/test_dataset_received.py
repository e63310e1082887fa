"""Received datasets: paths that leave the root, non-finite values, wrong widths, a lost meta/info.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataset_helpers import make_info, replace_file, set_record, write_dataset

from robolearn.core.durable import file_sha256
from robolearn.datasets.format import (
    EPISODE_META_KEY,
    INFO_PATH,
    DatasetCorruptError,
    DatasetError,
    resolve_inside,
)
from robolearn.datasets.merge import merge_datasets
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.repair import repair, verify
from robolearn.datasets.sampler import WindowDataset


def _outside(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    return victim


def _point_outside(root: Path, victim: Path, how: str) -> None:
    if how == "dotdot":
        set_record(root, 1, file=os.path.relpath(victim, root))
    elif how == "absolute":
        set_record(root, 1, file=str(victim))
    else:  # the record is the usual name, but the file there is a symlink to the outside
        rec = EpisodeDataset(root, check_sizes=False).records[1]
        (root / rec.file).unlink()
        (root / rec.file).symlink_to(victim)


def test_resolve_inside_refuses_every_way_out(tmp_path):
    root = tmp_path / "ds"
    (root / "data").mkdir(parents=True)
    (root / "data/link").symlink_to(tmp_path)
    assert resolve_inside(root, "data/episode_000000.parquet", "x") == root / "data/episode_000000.parquet"
    for bad, why in [("../victim.txt", "'..'"), ("data/../../v", "'..'"), ("/etc/passwd", "absolute"),
                     ("", "empty"), ("data/link/victim.txt", "symlink")]:
        with pytest.raises(DatasetCorruptError, match=why) as err:
            resolve_inside(root, bad, "meta/episodes.jsonl episode 4")
        assert "episode 4" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_index_record_pointing_outside_is_refused_and_repair_moves_nothing_outside(tmp_path, how):
    root, victim = tmp_path / "ds", _outside(tmp_path)
    write_dataset(root, [3, 4, 2])
    _point_outside(root, victim, how)
    with pytest.raises(DatasetCorruptError, match="episode 1"):
        EpisodeDataset(root)
    report = verify(root)
    assert not report.ok and report.bad_episodes == [1]
    with pytest.raises(DatasetError, match="episode 1"):
        merge_datasets([root], tmp_path / "merged")
    done = repair(root)
    assert victim.read_text() == "not yours"
    assert not (root / "quarantine/victim.txt").exists()
    assert any("episode 1" in line for line in done)
    # the record is dropped; the episode's own file, left unreferenced, is indexed again from its footer
    lengths = [3, 2] if how == "symlink" else [3, 2, 4]
    assert [r.length for r in EpisodeDataset(root).records] == lengths and verify(root).ok


def test_symlinked_leftover_file_is_quarantined_not_indexed(tmp_path):
    root, elsewhere = tmp_path / "ds", tmp_path / "elsewhere"
    write_dataset(root, [3])
    write_dataset(elsewhere, [5])
    target = elsewhere / "data/episode_000000.parquet"
    digest = file_sha256(target)
    (root / "data/episode_000007.parquet").symlink_to(target)
    done = repair(root)
    assert any("symlink" in line for line in done)
    assert [r.length for r in EpisodeDataset(root).records] == [3]
    assert file_sha256(target) == digest and (root / "quarantine/episode_000007.parquet").is_symlink()


def test_nan_action_fails_verify_and_the_loader_naming_episode_key_step(tmp_path):
    root = tmp_path / "ds"
    arrays = write_dataset(root, [4, 6])
    action = arrays[1]["action"].copy()
    action[3, 1] = np.nan
    table = pq.read_table(root / "data/episode_000001.parquet")
    column = pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), 2)
    replace_file(root, 1, table.set_column(table.schema.get_field_index("action"), "action", column))
    report = verify(root)
    assert not report.ok and report.bad_episodes == [1]
    assert "action is nan at step 3 element 1" in report.findings[0].problem
    assert verify(root, deep=False).ok  # sizes and hashes match: only reading the values finds it
    with pytest.raises(DatasetCorruptError, match=r"episode 1 .*action is nan at step 3 element 1.*repair"):
        WindowDataset(root)
    repair(root)
    assert len(EpisodeDataset(root)) == 1 and (root / "quarantine/episode_000001.parquet").exists()


def test_wrong_width_fails_deep_verify_and_the_loader_naming_the_key(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [6, 6])
    table = pq.read_table(root / "data/episode_000000.parquet")
    narrow = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(12, np.float32)), 2)  # 6 steps x 2, not 3
    i = table.schema.get_field_index("obs.joint_pos")
    replace_file(root, 0, table.set_column(i, "obs.joint_pos", narrow))
    report = verify(root)
    want = "observation 'joint_pos' holds 2 float values per step, meta/info.json says shape (3,)"
    assert not report.ok and want in report.findings[0].problem and "episode 0" in report.findings[0].problem
    with pytest.raises(DatasetCorruptError, match="episode 0 .*observation 'joint_pos' holds 2"):
        WindowDataset(root)


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
def test_repair_rebuilds_info_json_from_the_episode_files(tmp_path, damage):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4], image=True)
    original = (root / INFO_PATH).read_text()
    if damage == "missing":
        (root / INFO_PATH).unlink()
    else:
        (root / INFO_PATH).write_text("\x00garbage" if damage == "garbage" else original[: len(original) // 2])
    with pytest.raises(DatasetCorruptError, match="repair"):
        verify(root)
    done = repair(root)
    assert any("rebuilt meta/info.json" in line for line in done)
    assert json.loads((root / INFO_PATH).read_text()) == json.loads(original)
    assert (root / (INFO_PATH + ".bad")).exists() == (damage != "missing")
    assert verify(root).ok and len(EpisodeDataset(root)) == 2


def test_repair_rebuilds_info_json_from_the_schema_of_older_files(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4])
    for i in range(2):  # files written before the footer held the info
        meta = pq.read_metadata(root / f"data/episode_00000{i}.parquet").metadata
        replace_file(root, i, pq.read_table(root / f"data/episode_00000{i}.parquet"),
                      {EPISODE_META_KEY: meta[EPISODE_META_KEY]})
    (root / INFO_PATH).unlink()
    repair(root)
    info, want = EpisodeDataset(root).info, make_info()
    assert info.same_features(want) is None and info.fps == 20.0
    assert verify(root).ok


def test_a_directory_without_episodes_is_not_made_a_dataset(tmp_path):
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match="no dataset"):
        repair(tmp_path / "other")
    assert not (tmp_path / "other/meta").exists()


def test_the_writer_does_not_recreate_a_lost_info_json_over_existing_episodes(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3])
    (root / INFO_PATH).unlink()
    with pytest.raises(DatasetCorruptError, match="repair"):
        write_dataset(root, [2])
    assert not (root / INFO_PATH).exists()
    repair(root)
    assert [r.length for r in EpisodeDataset(root).records] == [3]


def test_a_data_directory_linked_outside_is_refused_before_anything_is_deleted(tmp_path):
    root, elsewhere = tmp_path / "ds", tmp_path / "elsewhere"
    write_dataset(root, [3])
    (root / "data").rename(elsewhere)
    (elsewhere / "episode_000009.parquet.partial").write_text("someone else's")
    (root / "data").symlink_to(elsewhere)
    with pytest.raises(DatasetCorruptError, match="real directory"):
        repair(root)
    assert (elsewhere / "episode_000009.parquet.partial").exists()


def test_merge_refuses_to_merge_a_dataset_into_itself(tmp_path):
    write_dataset(tmp_path / "ds", [3])
    with pytest.raises(DatasetError, match="into itself"):
        merge_datasets([tmp_path / "ds"], tmp_path / "ds/../ds")
    assert len(EpisodeDataset(tmp_path / "ds")) == 1


def test_nan_in_index_statistics_is_caught_before_it_reaches_a_normalizer(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [3, 4])
    stats = EpisodeDataset(root).records[1].stats
    stats["action"]["sum"][0] = float("nan")
    set_record(root, 1, stats=stats)
    report = verify(root, deep=False)
    assert report.bad_episodes == [1] and "action/sum hold NaN" in report.findings[0].problem
    with pytest.raises(DatasetCorruptError, match="episode 1 .*action/sum hold NaN"):
        EpisodeDataset(root).stats()
    assert EpisodeDataset(root).stats([0])["action"]["count"] == 3
