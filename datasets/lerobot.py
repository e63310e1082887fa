"""Export to and import from the LeRobotDataset v3.0 layout (what ``lerobot``'s ``LeRobotDataset`` loads).

Export writes::

    meta/info.json                                   codebase_version "v3.0", integer fps, features, templates
    meta/stats.json                                  per-feature min/max/mean/std/count (images (3, 1, 1))
    meta/tasks.parquet                               task string (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, data/video offsets, stats
    meta/robolearn.json                              the robolearn info + units (ignored by LeRobot)
    data/chunk-XXX/file-XXX.parquet                  every step of every episode (rolls over at ~100 MB)
    videos/observation.images.<cam>/chunk-000/file-000.mp4   all episodes' frames, back to back

Key mapping: state observation ``k`` <-> ``observation.<k>``; image ``pixels/<cam>`` <->
``observation.images.<cam>``; the action <-> ``action``. Columns follow LeRobot's feature rules (see
lerobot_layout.py): a shape ``(1,)`` feature (PandaLift's ``gripper``) is a scalar column, wider ones
fixed-size lists. Per step also ``next.reward``, ``next.success``, ``next.done``, ``intervention`` and
``step_time`` (the robolearn timestamp, float64 s; LeRobot's own ``timestamp`` is ``frame_index / fps``).
Import (lerobot_import.py) accepts any v3.0 dataset with video or image features and state vectors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.datasets.format import DatasetError, DatasetInfo, EpisodeRecord, is_image
from robolearn.datasets.lerobot_import import import_lerobot
from robolearn.datasets.lerobot_layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    CODEC_NAMES,
    DATA_FILE_MB,
    DATA_PATH,
    EPISODES_PATH,
    TASKS_PATH,
    VIDEO_FILE_MB,
    VIDEO_PATH,
    chunk_file,
    column_for,
    integer_fps,
    lerobot_key,
)
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.stats import aggregate

__all__ = ["export_lerobot", "import_lerobot"]


def _video_info(shape: tuple[int, ...], fps: int, codec: str) -> dict[str, Any]:
    h, w, c = shape
    return {"video.height": h, "video.width": w, "video.codec": CODEC_NAMES.get(codec, codec),
            "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps, "video.channels": c,
            "has_audio": False}


def _state_feature(dtype: str, shape: tuple[int, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """A LeRobot state feature; shapes of more than one axis are declared flattened like their column."""
    flat = list(shape) if len(shape) == 1 else [int(np.prod(shape))]
    return {"dtype": dtype, "shape": flat, "names": list(names) or None}


def _features(info: DatasetInfo, fps: int, vcodec: str) -> dict[str, dict[str, Any]]:
    feats: dict[str, dict[str, Any]] = {}
    for key, f in info.observation.items():
        if is_image(f):
            feats[lerobot_key(key, f)] = {"dtype": "video", "shape": list(f.shape),
                                          "names": ["height", "width", "channels"],
                                          "info": _video_info(f.shape, fps, vcodec)}
        else:
            feats[lerobot_key(key, f)] = _state_feature(f.dtype, f.shape, f.names)
    feats["action"] = _state_feature(info.action.dtype, info.action.shape, info.action.names)
    scalar = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
              "task_index": "int64", "next.reward": "float32", "next.success": "bool", "next.done": "bool",
              "intervention": "bool", "step_time": "float64"}
    for name, dtype in scalar.items():
        feats[name] = {"dtype": dtype, "shape": [1], "names": None}
    for feat in feats.values():
        if feat["dtype"] != "video":
            feat["fps"] = fps
    return feats


def _episode_table(ds: EpisodeDataset, i: int, first_index: int, fps: int) -> pa.Table:
    ep = ds.episode(i, [k for k, f in ds.info.observation.items() if not is_image(f)])
    n = len(ep)
    cols: dict[str, pa.Array] = {}
    for key, values in ep.obs.items():
        f = ds.info.observation[key]
        cols[lerobot_key(key, f)] = column_for(values, f.shape)
    cols["action"] = column_for(ep.action, ds.info.action.shape)
    frames = np.arange(n, dtype=np.int64)
    cols["timestamp"] = pa.array((frames / fps).astype(np.float32))
    cols["frame_index"] = pa.array(frames)
    cols["episode_index"] = pa.array(np.full(n, i, np.int64))
    cols["index"] = pa.array(first_index + frames)
    cols["task_index"] = pa.array(np.zeros(n, np.int64))
    cols["next.reward"] = pa.array(ep.reward)
    cols["next.success"] = pa.array(ep.is_success)
    done = np.zeros(n, bool)
    done[-1] = True
    cols["next.done"] = pa.array(done)
    cols["intervention"] = pa.array(ep.intervention)
    cols["step_time"] = pa.array(ep.timestamp)
    return pa.table(cols)


def _encode_videos(ds: EpisodeDataset, out: Path, fps: int, vcodec: str, crf: int) -> dict[str, list[float]]:
    """One MP4 per camera with all episodes back to back; returns each episode's start time (s) per key."""
    import imageio.v2 as imageio

    starts: dict[str, list[float]] = {}
    for key, f in ds.info.observation.items():
        if not is_image(f):
            continue
        vkey = lerobot_key(key, f)
        path = out / VIDEO_PATH.format(video_key=vkey, chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        params = ["-crf", str(crf), "-g", "2"]
        if vcodec == "libsvtav1":
            params += ["-svtav1-params", "log-level=1"]
        writer = imageio.get_writer(path, fps=fps, codec=vcodec, quality=None, pixelformat="yuv420p",
                                    macro_block_size=1, ffmpeg_log_level="error", ffmpeg_params=params)
        frames = 0
        starts[vkey] = []
        try:
            for i in range(len(ds)):
                starts[vkey].append(frames / fps)
                for frame in ds.episode(i, [key]).obs[key]:
                    writer.append_data(frame)
                    frames += 1
        finally:
            writer.close()
    return starts


def export_lerobot(src: str | Path, out: str | Path, vcodec: str = "libx264", crf: int = 10) -> Path:
    """Write the dataset at ``src`` as a LeRobotDataset v3.0 directory ``out`` (which must not exist).

    ``vcodec`` is the ffmpeg encoder of the camera videos: ``libx264`` (H.264) or ``libsvtav1`` (AV1,
    LeRobot's own default); both are yuv420p, which LeRobot's decoders read.
    """
    ds, out = EpisodeDataset(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"export target {out} already exists and is not empty: choose a new --out")
    fps = integer_fps(ds.info.fps, str(src))
    (out / "meta").mkdir(parents=True, exist_ok=True)
    starts = _encode_videos(ds, out, fps, vcodec, crf)
    rows: list[dict[str, Any]] = []
    file_n, tables, size, first = 0, [], 0, 0
    for i, rec in enumerate(ds.records):
        table = _episode_table(ds, i, first, fps)
        if tables and size + table.nbytes > DATA_FILE_MB * 2**20:
            _write_data(out, file_n, tables)
            file_n, tables, size = file_n + 1, [], 0
        tables.append(table)
        size += table.nbytes
        rows.append(_episode_row(ds, i, rec, file_n, first, fps, starts))
        first += rec.length
    if tables:
        _write_data(out, file_n, tables)
    _write_meta(ds, out, rows, fps, vcodec)
    return out


def _episode_row(ds: EpisodeDataset, i: int, rec: EpisodeRecord, file_n: int, first: int, fps: int,
                 starts: dict[str, list[float]]) -> dict[str, Any]:
    """Episode ``i``'s row of ``meta/episodes``: where its frames are, and its statistics."""
    chunk, file = chunk_file(file_n)
    row: dict[str, Any] = {
        "episode_index": i, "tasks": [_task(ds)], "length": rec.length,
        "data/chunk_index": chunk, "data/file_index": file, "dataset_from_index": first,
        "dataset_to_index": first + rec.length, "success": rec.success, "seed": rec.seed,
        "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
    for vkey, ts in starts.items():
        row |= {f"videos/{vkey}/chunk_index": 0, f"videos/{vkey}/file_index": 0,
                f"videos/{vkey}/from_timestamp": ts[i], f"videos/{vkey}/to_timestamp": ts[i] + rec.length / fps}
    for name, stats in _lerobot_stats(ds.info, [rec]).items():
        row |= {f"stats/{name}/{k}": v for k, v in stats.items()}
    return row


def _task(ds: EpisodeDataset) -> str:
    return ds.info.task or ds.info.env_id or "task"


def _write_data(out: Path, file_n: int, tables: list[pa.Table]) -> None:
    chunk, file = chunk_file(file_n)
    path = out / DATA_PATH.format(chunk_index=chunk, file_index=file)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), path, compression="snappy")


def _lerobot_stats(info: DatasetInfo, records: list[EpisodeRecord]) -> dict[str, dict[str, Any]]:
    """LeRobot statistics ``{column: {min, max, mean, std: feature shape (images (3, 1, 1)), count: [n]}}``."""
    stats: dict[str, dict[str, Any]] = {}
    for key, s in aggregate(info, records).items():
        feat = info.action if key == "action" else info.observation[key]
        name = "action" if key == "action" else lerobot_key(key, feat)
        shape = (3, 1, 1) if is_image(feat) else (int(np.prod(feat.shape)),)
        stats[name] = {k: np.asarray(v, np.float64).reshape(shape).tolist() for k, v in s.items() if k != "count"}
        stats[name]["count"] = [int(s["count"])]
    return stats


def _write_meta(ds: EpisodeDataset, out: Path, rows: list[dict[str, Any]], fps: int, vcodec: str) -> None:
    import pandas as pd

    episodes = out / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), episodes)
    tasks = pd.DataFrame({"task_index": np.zeros(1, np.int64)}, index=pd.Index([_task(ds)], name="task"))
    tasks.to_parquet(out / TASKS_PATH)
    (out / "meta/stats.json").write_text(json.dumps(_lerobot_stats(ds.info, ds.records), indent=2))
    has_video = any(is_image(f) for f in ds.info.observation.values())
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": ds.info.robot or None,
        "total_episodes": len(ds), "total_frames": ds.num_steps, "total_tasks": 1, "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB, "video_files_size_in_mb": VIDEO_FILE_MB, "fps": fps,
        "splits": {"train": f"0:{len(ds)}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": _features(ds.info, fps, vcodec),
    }
    (out / "meta/info.json").write_text(json.dumps(info, indent=4))
    (out / "meta/robolearn.json").write_text(json.dumps(ds.info.to_dict(), indent=2))
