"""``robolearn dataset`` and ``robolearn collect`` run their real functions end to end."""

from __future__ import annotations

import argparse
import json

import pytest
from dataset_helpers import write_dataset

from robolearn.cli import collect as collect_cli
from robolearn.cli import dataset as dataset_cli
from robolearn.collect import CollectConfig, collect
from robolearn.datasets.format import DatasetError
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.repair import verify


def _run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_info_verify_repair_merge(tmp_path, capsys):
    write_dataset(tmp_path / "a", [3, 4], success=[True, False])
    write_dataset(tmp_path / "b", [5], success=[True])
    assert _run(dataset_cli, ["info", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "episodes 2 (1 successful), steps 7" in out and "joint_pos" in out
    assert _run(dataset_cli, ["info", "--json", str(tmp_path / "a")]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["action"]["count"] == 7
    assert _run(dataset_cli, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    merged = EpisodeDataset(tmp_path / "m")
    assert [r.length for r in merged.records] == [3, 4, 5]
    assert merged.records[2].meta["source_episode"] == 0
    victim = tmp_path / "m/data/episode_000001.parquet"
    victim.write_bytes(victim.read_bytes()[:100])
    assert _run(dataset_cli, ["verify", str(tmp_path / "m")]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    assert _run(dataset_cli, ["merge", str(tmp_path / "m"), "--out", str(tmp_path / "m2")]) == 1
    assert "episode_000001.parquet" in capsys.readouterr().err
    assert _run(dataset_cli, ["repair", str(tmp_path / "m")]) == 0
    assert _run(dataset_cli, ["verify", str(tmp_path / "m")]) == 0
    assert _run(dataset_cli, ["info", str(tmp_path / "missing")]) == 1


def test_collect_expert_appends_and_filters(tmp_path, capsys):
    out = tmp_path / "lift"
    assert _run(collect_cli, ["--episodes", "2", "--num-envs", "2", "--out", str(out), "--seed", "5"]) == 0
    assert "kept 2 episodes" in capsys.readouterr().out
    result = collect(CollectConfig(episodes=1, num_envs=1, out=str(out), noise=0.3, only_success=True),
                     progress=False)
    assert result.kept == 1
    ds = EpisodeDataset(out)
    assert len(ds) == 3 and all(r.success for r in ds.records)
    assert sorted(r.seed for r in ds.records)[:2] == [5, 6] and ds.records[2].seed >= 7
    assert ds.info.env_id == "robolearn/PandaLift-v0" and ds.info.action.shape == (5,)
    assert ds.info.observation["joint_pos"].units == "rad"
    ep = ds.episode(0)
    assert not ep.intervention.any() and ep.is_success[-1]
    assert verify(out).findings == []


def test_lost_info_json_is_one_line_naming_repair_and_repair_rebuilds_it(tmp_path, capsys):
    write_dataset(tmp_path / "a", [3, 4])
    (tmp_path / "a/meta/info.json").unlink()
    for action in ("info", "verify"):
        assert _run(dataset_cli, [action, str(tmp_path / "a")]) == 1
        err = capsys.readouterr().err.strip()
        assert "info.json is missing" in err and "dataset repair" in err and "\n" not in err
    assert _run(dataset_cli, ["repair", str(tmp_path / "a")]) == 0
    assert "rebuilt meta/info.json" in capsys.readouterr().out
    assert _run(dataset_cli, ["verify", str(tmp_path / "a")]) == 0


def test_collect_stores_camera_frames_as_asked(tmp_path, capsys):
    out = tmp_path / "px"
    argv = ["--episodes", "1", "--num-envs", "1", "--camera", "wrist", "--image-size", "16", "--out", str(out)]
    assert _run(collect_cli, [*argv, "--images", "png"]) == 0
    assert _run(dataset_cli, ["info", str(out)]) == 0
    assert "images stored as png" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="stores images as png"):  # another encoding than the dataset's
        _run(collect_cli, [*argv, "--images", "jpeg"])
    ds = EpisodeDataset(out)
    assert len(ds) == 1 and ds.episode(0).obs["pixels/wrist"].shape[1:] == (16, 16, 3)
