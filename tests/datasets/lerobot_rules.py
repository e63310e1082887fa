"""LeRobot's published v3.0 dataset rules, restated for tests (no lerobot import).

Sources (huggingface/lerobot, ``src/lerobot/datasets/utils.py`` and ``lerobot_dataset.py``):

* ``DEFAULT_DATA_PATH``, ``DEFAULT_VIDEO_PATH``, ``DEFAULT_EPISODES_PATH`` (``chunk-{:03d}/file-{:03d}``),
  ``DEFAULT_TASKS_PATH = "meta/tasks.parquet"``, ``DEFAULT_CHUNK_SIZE = 1000``;
* ``DEFAULT_FEATURES``: ``timestamp`` float32, ``frame_index`` / ``episode_index`` / ``index`` /
  ``task_index`` int64, all shape ``(1,)``;
* ``get_hf_features_from_features``: ``video`` -> no column; ``image`` -> ``datasets.Image()``; shape
  ``(1,)`` -> ``datasets.Value(dtype)`` (a scalar column); one axis -> ``Sequence(length=n)``; 2..5 axes
  -> ``ArrayND``. ``load_nested_dataset`` reads every ``data/*/*.parquet`` with those features, which is
  where a one-element list column fails ("Couldn't cast array of type fixed_size_list<...>[1] to float");
* ``load_info`` reads ``fps`` as the integer frame rate; ``_validate_feature_names``: no ``/`` in names;
* ``load_episodes`` reads ``meta/episodes/*/*.parquet`` (``stats/`` columns dropped) and locates each
  episode by ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``, ``dataset_to_index`` and,
  per video key, ``videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}``;
  ``load_tasks`` reads ``meta/tasks.parquet`` with the task string as index and a ``task_index`` column;
* video frames are fetched at ``from_timestamp + timestamp`` (tolerance 1e-4 s), so each video's frame
  rate must be ``fps`` and the frames of an episode back to back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64",
                    "index": "int64", "task_index": "int64"}
DTYPES = {"float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool", "string", "video", "image"}
EPISODE_COLUMNS = {"episode_index": pa.int64(), "length": pa.int64(), "data/chunk_index": pa.int64(),
                   "data/file_index": pa.int64(), "dataset_from_index": pa.int64(),
                   "dataset_to_index": pa.int64()}


def expected_type(feature: dict[str, Any]) -> pa.DataType | None:
    """The Arrow type LeRobot's features rule gives a non-video feature's data column (None: no column)."""
    dtype, shape = feature["dtype"], tuple(feature["shape"])
    if dtype == "video":
        return None
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    value = pa.type_for_alias(dtype)
    if shape == (1,):
        return value
    assert len(shape) == 1, f"robolearn exports only 1-axis state features, got {shape}"
    return pa.list_(value, shape[0])


def hf_features(features: dict[str, dict[str, Any]]):
    """``get_hf_features_from_features``, with the HF ``datasets`` package (None when not installed)."""
    try:
        import datasets
    except ImportError:
        return None
    out = {}
    for key, ft in features.items():
        shape = tuple(ft["shape"])
        if ft["dtype"] == "video":
            continue
        if ft["dtype"] == "image":
            out[key] = datasets.Image()
        elif shape == (1,):
            out[key] = datasets.Value(dtype=ft["dtype"])
        else:
            out[key] = datasets.Sequence(length=shape[0], feature=datasets.Value(dtype=ft["dtype"]))
    return datasets.Features(out)


def check_info(info: dict[str, Any]) -> None:
    assert info["codebase_version"] == "v3.0"
    assert type(info["fps"]) is int and info["fps"] > 0, f"fps must be an int, got {info['fps']!r}"
    assert type(info["chunks_size"]) is int and info["data_path"] == DATA_PATH
    videos = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    assert info["video_path"] == (VIDEO_PATH if videos else None)
    for key in ("total_episodes", "total_frames", "total_tasks"):
        assert type(info[key]) is int
    for name, dtype in DEFAULT_FEATURES.items():
        assert info["features"][name]["dtype"] == dtype and info["features"][name]["shape"] == [1]
    for key, ft in info["features"].items():
        assert "/" not in key and ft["dtype"] in DTYPES, (key, ft["dtype"])
        assert all(type(s) is int for s in ft["shape"]), (key, ft["shape"])
        assert ft.get("names") is None or isinstance(ft["names"], (list, dict)), key
        if ft["dtype"] == "video":
            h, w, c = ft["shape"]
            assert ft["names"] == ["height", "width", "channels"]
            vi = ft["info"]
            assert (vi["video.height"], vi["video.width"], vi["video.channels"]) == (h, w, c)
            assert vi["video.codec"] in ("h264", "av1", "hevc") and vi["video.pix_fmt"] == "yuv420p"


def check_data(root: Path, info: dict[str, Any]) -> pd.DataFrame:
    """Every data file's columns are exactly the non-video features, typed by the rule; returns all rows."""
    files = sorted((root / "data").glob("*/*.parquet"))
    assert files and all(f.relative_to(root).as_posix().count("/") == 2 for f in files)
    want = {k: t for k, f in info["features"].items() if (t := expected_type(f)) is not None}
    features = hf_features(info["features"])
    frames = []
    for path in files:
        schema = pq.read_schema(path)
        assert set(schema.names) == set(want), set(schema.names) ^ set(want)
        for name, t in want.items():
            assert schema.field(name).type == t, f"{name}: {schema.field(name).type} is not {t}"
        if features is not None:  # what LeRobot's load_nested_dataset does with each file
            import datasets

            datasets.Dataset.from_parquet(str(path), features=features, cache_dir=str(root.parent / "hf_cache"))
        frames.append(pq.read_table(path).to_pandas())
    data = pd.concat(frames, ignore_index=True)
    assert data["index"].tolist() == list(range(len(data))) and len(data) == info["total_frames"]
    expected = (data["frame_index"].to_numpy() / info["fps"]).astype(np.float32)
    np.testing.assert_allclose(data["timestamp"].to_numpy(), expected, atol=1e-6)
    return data


def check_episodes(root: Path, info: dict[str, Any], data: pd.DataFrame) -> pd.DataFrame:
    files = sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    assert files
    table = pa.concat_tables([pq.read_table(p) for p in files])
    for name, t in EPISODE_COLUMNS.items():
        assert table.schema.field(name).type == t, name
    assert pa.types.is_list(table.schema.field("tasks").type)
    assert table.schema.field("tasks").type.value_type == pa.string()
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks["task_index"].dtype == np.int64 and all(isinstance(t, str) for t in tasks.index)
    videos = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    for v in videos:
        for col, t in (("chunk_index", pa.int64()), ("file_index", pa.int64()),
                       ("from_timestamp", pa.float64()), ("to_timestamp", pa.float64())):
            assert table.schema.field(f"videos/{v}/{col}").type == t, (v, col)
    episodes = table.to_pandas()
    assert len(episodes) == info["total_episodes"]
    for _, row in episodes.iterrows():
        rows = data[data["episode_index"] == row["episode_index"]]
        assert len(rows) == row["length"] == row["dataset_to_index"] - row["dataset_from_index"]
        assert rows["index"].tolist() == list(range(row["dataset_from_index"], row["dataset_to_index"]))
        assert set(row["tasks"]) <= set(tasks.index)
        for v in videos:
            span = row[f"videos/{v}/to_timestamp"] - row[f"videos/{v}/from_timestamp"]
            assert abs(span - row["length"] / info["fps"]) < 1e-6
    return episodes


def check_stats(root: Path, info: dict[str, Any]) -> None:
    stats = json.loads((root / "meta/stats.json").read_text())
    for key, s in stats.items():
        ft = info["features"][key]
        shape = (3, 1, 1) if ft["dtype"] in ("video", "image") else tuple(ft["shape"])
        for name in ("min", "max", "mean", "std"):
            assert np.asarray(s[name]).shape == shape, (key, name)
        assert len(s["count"]) == 1 and type(s["count"][0]) is int


def check_videos(root: Path, info: dict[str, Any], episodes: pd.DataFrame) -> None:
    """Each episode's frames exist in its video file, at the dataset's fps and frame size."""
    import imageio.v2 as imageio

    for key, ft in info["features"].items():
        if ft["dtype"] != "video":
            continue
        for (chunk, file), rows in episodes.groupby([f"videos/{key}/chunk_index", f"videos/{key}/file_index"]):
            path = root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            reader = imageio.get_reader(path, "ffmpeg")
            meta = reader.get_meta_data()
            count = sum(1 for _ in reader)
            reader.close()
            assert meta["codec"] == ft["info"]["video.codec"] and abs(meta["fps"] - info["fps"]) < 1e-6
            assert tuple(meta["size"]) == (ft["shape"][1], ft["shape"][0])
            last = rows[f"videos/{key}/to_timestamp"].max()
            assert count >= round(last * info["fps"]), (count, last)


def check_lerobot_v3(root: Path) -> dict[str, Any]:
    """Assert that ``root`` follows every rule above; returns its info.json."""
    info = json.loads((root / "meta/info.json").read_text())
    check_info(info)
    data = check_data(root, info)
    episodes = check_episodes(root, info, data)
    check_stats(root, info)
    check_videos(root, info, episodes)
    return info
