"""LeRobot v3.0 compatibility as LeRobot sees it: our export against LeRobot's published rules (and
``LeRobotDataset`` itself where lerobot is installed), and import of a dataset laid out by LeRobot's writer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataset_helpers import make_info, smooth_image, write_dataset
from lerobot_rules import VIDEO_PATH, check_lerobot_v3

from robolearn.datasets.format import DatasetError
from robolearn.datasets.lerobot import export_lerobot, import_lerobot
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.writer import EpisodeWriter


@pytest.mark.parametrize("vcodec", ["libx264", "libsvtav1"])
def test_export_follows_lerobot_v3_rules(tmp_path, vcodec):
    write_dataset(tmp_path / "ds", [5, 8, 3], image=True)
    out = export_lerobot(tmp_path / "ds", tmp_path / "lr", vcodec=vcodec)
    info = check_lerobot_v3(out)
    assert info["fps"] == 20 and info["features"]["observation.gripper"]["shape"] == [1]
    schema = pq.read_schema(out / "data/chunk-000/file-000.parquet")
    assert schema.field("observation.gripper").type == pa.float32()  # a scalar, not a one-element list
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == (
        "h264" if vcodec == "libx264" else "av1")


def test_export_refuses_a_fractional_fps(tmp_path):
    info = make_info()
    info.fps = 12.5
    with EpisodeWriter(tmp_path / "ds", info) as writer:
        writer.begin_episode()
        writer.add_step({"joint_pos": np.zeros(3), "gripper": np.zeros(1)}, np.zeros(2))
        writer.end_episode()
    with pytest.raises(DatasetError, match="12.5 Hz; LeRobot v3 needs a whole number"):
        export_lerobot(tmp_path / "ds", tmp_path / "lr")


def test_lerobot_loads_the_export(tmp_path):
    lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")
    write_dataset(tmp_path / "ds", [5, 8, 3], image=True)
    out = export_lerobot(tmp_path / "ds", tmp_path / "lr")
    ds = lerobot_dataset.LeRobotDataset("local/robolearn", root=out)
    assert ds.num_episodes == 3 and ds.num_frames == 16
    ours = EpisodeDataset(tmp_path / "ds").episode(1)
    item = ds[5 + 2]  # episode 1, step 2
    np.testing.assert_array_equal(item["observation.joint_pos"].numpy(), ours.obs["joint_pos"][2])
    assert float(item["observation.gripper"]) == float(ours.obs["gripper"][2, 0])
    np.testing.assert_array_equal(item["action"].numpy(), ours.action[2])
    image = item["observation.images.front"].numpy().transpose(1, 2, 0) * 255.0
    assert np.abs(image - ours.obs["pixels/front"][2]).mean() < 3.0


# ----------------------------------------------------------------------------- LeRobot-written input
FPS, H, W = 10, 16, 24
LENGTHS = [4, 6, 5]
TASKS = ["pick the cube", "place the cube"]


def _frames(e: int, n: int) -> np.ndarray:
    return np.stack([smooth_image(3 * e + t, H, W) for t in range(n)])


def _arrays(e: int, n: int) -> dict[str, np.ndarray]:
    t = np.arange(n, dtype=np.float32)
    return {"state": np.stack([t, t + e, -t], 1), "effort": 0.1 * t + e,
            "action": np.stack([t * 2, np.full(n, e, np.float32)], 1), "reward": t / 10}


def _lerobot_features() -> dict:
    scalar = {"dtype": "float32", "shape": [1], "names": None}
    return {
        "observation.state": {"dtype": "float32", "shape": [3], "names": {"motors": ["j1", "j2", "j3"]}},
        "observation.effort": {"dtype": "float32", "shape": [1], "names": ["effort"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["vx", "wz"]},
        "observation.images.top": {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"],
                                   "info": {"video.height": H, "video.width": W, "video.codec": "av1",
                                            "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                                            "video.fps": FPS, "video.channels": 3, "has_audio": False}},
        "next.reward": scalar, "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "timestamp": scalar, **{k: {"dtype": "int64", "shape": [1], "names": None}
                                for k in ("frame_index", "episode_index", "index", "task_index")},
    }


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio.get_writer(path, fps=FPS, codec="libsvtav1", quality=None, pixelformat="yuv420p",
                                macro_block_size=1, ffmpeg_log_level="error",
                                ffmpeg_params=["-crf", "10", "-g", "2", "-svtav1-params", "log-level=1"])
    for frame in np.concatenate(frames):
        writer.append_data(frame)
    writer.close()


def _data_table(e: int, n: int, first: int) -> pa.Table:
    a, frames = _arrays(e, n), np.arange(n)
    return pa.table({
        "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(a["state"].reshape(-1)), 3),
        "observation.effort": pa.array(a["effort"], pa.float32()),
        "action": pa.FixedSizeListArray.from_arrays(pa.array(a["action"].reshape(-1)), 2),
        "next.reward": pa.array(a["reward"], pa.float32()), "next.done": pa.array(frames == n - 1),
        "timestamp": pa.array((frames / FPS).astype(np.float32)), "frame_index": pa.array(frames),
        "episode_index": pa.array(np.full(n, e)), "index": pa.array(first + frames),
        "task_index": pa.array(np.full(n, min(e, 1))),
    })


def write_lerobot_style(root: Path) -> Path:
    """A v3.0 dataset laid out as LeRobot's writer does: episode 0 in data and video file 0, episodes 1
    and 2 in file 1 (back to back), AV1 video, a scalar state, ``names`` as a dict, two tasks."""
    rows, first = [], 0
    for file, eps in enumerate([[0], [1, 2]]):
        tables, start = [], 0.0
        for e in eps:
            n = LENGTHS[e]
            tables.append(_data_table(e, n, first))
            rows.append({"episode_index": e, "tasks": [TASKS[min(e, 1)]], "length": n, "data/chunk_index": 0,
                         "data/file_index": file, "dataset_from_index": first, "dataset_to_index": first + n,
                         "videos/observation.images.top/chunk_index": 0,
                         "videos/observation.images.top/file_index": file,
                         "videos/observation.images.top/from_timestamp": start,
                         "videos/observation.images.top/to_timestamp": start + n / FPS,
                         "stats/action/mean": [0.0, 0.0], "meta/episodes/chunk_index": 0,
                         "meta/episodes/file_index": 0})
            first, start = first + n, start + n / FPS
        path = root / f"data/chunk-000/file-{file:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), path)
        _write_video(root / VIDEO_PATH.format(video_key="observation.images.top", chunk_index=0, file_index=file),
                     [_frames(e, LENGTHS[e]) for e in eps])
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")
    pd.DataFrame({"task_index": [0, 1]}, index=pd.Index(TASKS, name="task")).to_parquet(root / "meta/tasks.parquet")
    zeros = {"min": [0.0], "max": [0.0], "mean": [0.0], "std": [0.0], "count": [first]}
    stats = {"observation.effort": zeros, "action": {**zeros, **{k: [0.0, 0.0] for k in ("min", "max", "mean", "std")}}}
    (root / "meta/stats.json").write_text(json.dumps(stats))
    info = {"codebase_version": "v3.0", "robot_type": "koch", "total_episodes": 3, "total_frames": first,
            "total_tasks": 2, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
            "fps": FPS, "splits": {"train": "0:3"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": VIDEO_PATH, "features": _lerobot_features()}
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root


def test_import_of_a_dataset_written_by_lerobot_conventions(tmp_path):
    src = write_lerobot_style(tmp_path / "lr")
    check_lerobot_v3(src)  # the fixture itself follows the rules our export is held to
    ds = EpisodeDataset(import_lerobot(src, tmp_path / "ds"))
    assert [r.length for r in ds.records] == LENGTHS and ds.info.fps == FPS
    assert ds.info.observation["state"].names == ("j1", "j2", "j3") and ds.info.task == TASKS[0]
    assert ds.info.observation["pixels/top"].shape == (H, W, 3) and ds.info.robot == "koch"
    for e, n in enumerate(LENGTHS):
        ep, want = ds.episode(e), _arrays(e, n)
        np.testing.assert_array_equal(ep.obs["state"], want["state"])
        np.testing.assert_array_equal(ep.obs["effort"][:, 0], want["effort"])
        np.testing.assert_array_equal(ep.action, want["action"])
        np.testing.assert_array_equal(ep.reward, want["reward"])
        assert np.abs(ep.obs["pixels/top"].astype(int) - _frames(e, n)).mean() < 3.0


@pytest.mark.parametrize(("key", "template", "why"), [
    ("video_path", "../../{video_key}.mp4", "'..'"),
    ("data_path", "/tmp/{chunk_index}.parquet", "absolute"),
    ("video_path", "videos/{video_key.__class__}.mp4", "uses field"),
])
def test_import_keeps_info_json_paths_inside_the_source(tmp_path, key, template, why):
    src = write_lerobot_style(tmp_path / "lr")
    info = json.loads((src / "meta/info.json").read_text())
    info[key] = template
    (src / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=why):
        import_lerobot(src, tmp_path / "ds")


def test_import_refuses_a_video_symlinked_outside(tmp_path):
    src = write_lerobot_style(tmp_path / "lr")
    video = src / VIDEO_PATH.format(video_key="observation.images.top", chunk_index=0, file_index=1)
    shutil.move(video, tmp_path / "elsewhere.mp4")
    video.symlink_to(tmp_path / "elsewhere.mp4")
    with pytest.raises(DatasetError, match="symlink"):
        import_lerobot(src, tmp_path / "ds")


def test_import_names_the_episode_holding_a_nan(tmp_path):
    src = write_lerobot_style(tmp_path / "lr")
    path = src / "data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    effort = table["observation.effort"].to_numpy().copy()
    effort[5] = np.nan  # file 1 holds episode 1 (rows 0..5), then episode 2: its last step
    pq.write_table(table.set_column(table.schema.get_field_index("observation.effort"), "observation.effort",
                                    pa.array(effort, pa.float32())), path)
    with pytest.raises(DatasetError, match="episode 1: observation 'effort' contains NaN"):
        import_lerobot(src, tmp_path / "ds")
    assert [r.length for r in EpisodeDataset(tmp_path / "ds").records] == [LENGTHS[0]]


def _add_image_camera(src: Path, frame_of: dict[tuple[int, int], bytes] | None = None) -> None:
    """Give the fixture an ``image`` camera (PNG ``{bytes, path}`` structs in the data files, as LeRobot's
    writer stores ``dtype: image`` features); ``frame_of[(episode, step)]`` replaces a frame's bytes."""
    import cv2

    info = json.loads((src / "meta/info.json").read_text())
    info["features"]["observation.images.wrist"] = {"dtype": "image", "shape": [3, H, W],
                                                    "names": ["channels", "height", "width"]}
    (src / "meta/info.json").write_text(json.dumps(info))
    for path in sorted(src.glob("data/chunk-000/file-*.parquet")):
        table = pq.read_table(path)
        cells = []
        for e, t in zip(table["episode_index"].to_pylist(), table["frame_index"].to_pylist(), strict=True):
            png = cv2.imencode(".png", smooth_image(3 * e + t, H, W)[..., ::-1])[1].tobytes()
            cells.append({"bytes": (frame_of or {}).get((e, t), png), "path": None})
        pq.write_table(table.append_column("observation.images.wrist", pa.array(cells)), path)


def test_import_of_image_features_decodes_png_exactly(tmp_path):
    src = write_lerobot_style(tmp_path / "lr")
    _add_image_camera(src)
    ds = EpisodeDataset(import_lerobot(src, tmp_path / "ds", images="png"))
    assert ds.info.observation["pixels/wrist"].shape == (H, W, 3) and ds.info.images.codec == "png"
    for e, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(ds.episode(e).obs["pixels/wrist"], _frames(e, n))


def test_import_checks_each_image_against_the_declared_feature(tmp_path):
    import cv2

    src = write_lerobot_style(tmp_path / "lr")
    _add_image_camera(src, {(1, 3): cv2.imencode(".png", np.zeros((4000, 4000, 3), np.uint8))[1].tobytes()})
    with pytest.raises(DatasetError, match=r"episode 1 'observation.images.wrist' step 3 holds a 4000x4000 PNG "
                                           r"where the feature declares 16x24"):
        import_lerobot(src, tmp_path / "ds")
    assert [r.length for r in EpisodeDataset(tmp_path / "ds").records] == [LENGTHS[0]]  # episode 0 kept
