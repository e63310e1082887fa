"""Export to and import from the LeRobotDataset v3.0 layout (plain pyarrow / pandas readable).

Export writes::

    meta/info.json                                   codebase_version "v3.0", fps, features, path templates
    meta/stats.json                                  per-feature min/max/mean/std/count (images (3, 1, 1))
    meta/tasks.parquet                               task string -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, data/video offsets, stats
    meta/robolearn.json                              the robolearn info + key map (ignored by LeRobot)
    data/chunk-000/file-NNN.parquet                  every step of every episode (rolls over at ~100 MB)
    videos/observation.images.<cam>/chunk-000/file-000.mp4   all episodes' frames, back to back

Key mapping: state observation ``k`` <-> ``observation.<k>``; image ``pixels/<cam>`` <->
``observation.images.<cam>``; the action <-> ``action``. Per step also ``next.reward``, ``next.success``,
``next.done``, ``intervention`` and ``step_time`` (the robolearn timestamp, float64 s; LeRobot's own
``timestamp`` must be ``frame_index / fps``). Import accepts any v3.0 dataset with video or image
features and state vectors; state and actions round-trip exactly, video frames within codec tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetError, DatasetInfo, from_fixed_list, is_image, to_fixed_list
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.stats import aggregate
from robolearn.datasets.writer import EpisodeWriter

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
DATA_FILE_MB = 100
DEFAULT_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
EXTRA_COLUMNS = ("next.reward", "next.success", "next.done", "intervention", "step_time")


def lerobot_key(obs_key: str, feature: Feature) -> str:
    if is_image(feature):
        return "observation.images." + obs_key.removeprefix("pixels/").replace("/", "_")
    return "observation." + obs_key


def robolearn_key(key: str) -> str:
    if key.startswith("observation.images."):
        return "pixels/" + key.removeprefix("observation.images.")
    return key.removeprefix("observation.")


def _video_info(feat: Feature, fps: float, codec: str) -> dict[str, Any]:
    h, w, c = feat.shape
    name = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1", "libx265": "hevc"}.get(codec, codec)
    return {"video.height": h, "video.width": w, "video.codec": name,
            "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps, "video.channels": c,
            "has_audio": False}


def _features(info: DatasetInfo, vcodec: str) -> dict[str, dict[str, Any]]:
    feats: dict[str, dict[str, Any]] = {}
    for key, f in info.observation.items():
        if is_image(f):
            feats[lerobot_key(key, f)] = {"dtype": "video", "shape": list(f.shape),
                                          "names": ["height", "width", "channels"],
                                          "info": _video_info(f, info.fps, vcodec)}
        else:
            names = list(f.names) or None
            feats[lerobot_key(key, f)] = {"dtype": f.dtype, "shape": list(f.shape), "names": names}
    a = info.action
    feats["action"] = {"dtype": a.dtype, "shape": list(a.shape), "names": list(a.names) or None}
    scalar = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
              "task_index": "int64", "next.reward": "float32", "next.success": "bool", "next.done": "bool",
              "intervention": "bool", "step_time": "float64"}
    for name, dtype in scalar.items():
        feats[name] = {"dtype": dtype, "shape": [1], "names": None}
    for feat in feats.values():
        if feat["dtype"] != "video":
            feat["fps"] = info.fps
    return feats


def _episode_table(ds: EpisodeDataset, i: int, first_index: int) -> pa.Table:
    ep = ds.episode(i, [k for k, f in ds.info.observation.items() if not is_image(f)])
    n = len(ep)
    cols: dict[str, pa.Array] = {}
    for key, values in ep.obs.items():
        f = ds.info.observation[key]
        arrow_type = pa.list_(pa.from_numpy_dtype(values.dtype), int(np.prod(f.shape)))
        cols[lerobot_key(key, f)] = to_fixed_list(values, arrow_type)
    cols["action"] = to_fixed_list(ep.action, pa.list_(pa.float32(), ep.action.shape[1]))
    frames = np.arange(n, dtype=np.int64)
    cols["timestamp"] = pa.array((frames / ds.info.fps).astype(np.float32))
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


def _encode_videos(ds: EpisodeDataset, out: Path, vcodec: str, crf: int) -> dict[str, list[float]]:
    """One MP4 per camera with all episodes back to back; returns each episode's start time (s) per key."""
    import imageio.v2 as imageio

    starts: dict[str, list[float]] = {}
    for key, f in ds.info.observation.items():
        if not is_image(f):
            continue
        vkey = lerobot_key(key, f)
        path = out / VIDEO_PATH.format(video_key=vkey, chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(path, fps=ds.info.fps, codec=vcodec, quality=None, pixelformat="yuv420p",
                                    macro_block_size=1, ffmpeg_log_level="error",
                                    ffmpeg_params=["-crf", str(crf), "-g", "2"])
        frames = 0
        starts[vkey] = []
        for i in range(len(ds)):
            starts[vkey].append(frames / ds.info.fps)
            for frame in ds.episode(i, [key]).obs[key]:
                writer.append_data(frame)
                frames += 1
        writer.close()
    return starts


def export_lerobot(src: str | Path, out: str | Path, vcodec: str = "libx264", crf: int = 10) -> Path:
    """Write the dataset at ``src`` as a LeRobotDataset v3.0 directory ``out`` (which must not exist)."""
    ds, out = EpisodeDataset(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"export target {out} already exists and is not empty")
    (out / "meta").mkdir(parents=True, exist_ok=True)
    starts = _encode_videos(ds, out, vcodec, crf)
    rows: list[dict[str, Any]] = []
    file_index, tables, size, first = 0, [], 0, 0
    for i, rec in enumerate(ds.records):
        table = _episode_table(ds, i, first)
        if tables and size + table.nbytes > DATA_FILE_MB * 2**20:
            _write_data(out, file_index, tables)
            file_index, tables, size = file_index + 1, [], 0
        tables.append(table)
        size += table.nbytes
        row = {"episode_index": i, "tasks": [ds.info.task or ds.info.env_id or "task"], "length": rec.length,
               "data/chunk_index": 0, "data/file_index": file_index, "dataset_from_index": first,
               "dataset_to_index": first + rec.length, "success": rec.success, "seed": rec.seed,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
        for vkey, ts in starts.items():
            end = ts[i] + rec.length / ds.info.fps
            row |= {f"videos/{vkey}/chunk_index": 0, f"videos/{vkey}/file_index": 0,
                    f"videos/{vkey}/from_timestamp": ts[i], f"videos/{vkey}/to_timestamp": end}
        rows.append(row)
        first += rec.length
    if tables:
        _write_data(out, file_index, tables)
    _write_meta(ds, out, rows, vcodec)
    return out


def _write_data(out: Path, file_index: int, tables: list[pa.Table]) -> None:
    path = out / DATA_PATH.format(chunk_index=0, file_index=file_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), path, compression="snappy")


def _write_meta(ds: EpisodeDataset, out: Path, rows: list[dict[str, Any]], vcodec: str) -> None:
    import pandas as pd

    (out / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / EPISODES_PATH)
    task = ds.info.task or ds.info.env_id or "task"
    tasks = pd.DataFrame({"task_index": [0]}, index=pd.Index([task], name="task"))
    tasks.to_parquet(out / "meta/tasks.parquet")
    stats: dict[str, Any] = {}
    for key, s in aggregate(ds.info, ds.records).items():
        feat = ds.info.action if key == "action" else ds.info.observation[key]
        name = "action" if key == "action" else lerobot_key(key, feat)
        shape = (3, 1, 1) if is_image(feat) else feat.shape
        stats[name] = {k: np.asarray(v).reshape(shape).tolist() for k, v in s.items() if k != "count"}
        stats[name]["count"] = [int(s["count"])]
    (out / "meta/stats.json").write_text(json.dumps(stats, indent=2))
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": ds.info.robot or None,
        "total_episodes": len(ds), "total_frames": ds.num_steps, "total_tasks": 1, "chunks_size": 1000,
        "data_files_size_in_mb": DATA_FILE_MB, "video_files_size_in_mb": 500, "fps": ds.info.fps,
        "splits": {"train": f"0:{len(ds)}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if any(is_image(f) for f in ds.info.observation.values()) else None,
        "features": _features(ds.info, vcodec),
    }
    (out / "meta/info.json").write_text(json.dumps(info, indent=4))
    (out / "meta/robolearn.json").write_text(json.dumps(ds.info.to_dict(), indent=2))


# ----------------------------------------------------------------------------- import
def _import_info(src: Path, meta: dict[str, Any]) -> tuple[DatasetInfo, dict[str, str]]:
    """The robolearn info for a LeRobot dataset and the map robolearn obs key -> LeRobot column."""
    own = src / "meta/robolearn.json"
    base = DatasetInfo.from_dict(json.loads(own.read_text())) if own.is_file() else None
    obs: dict[str, Feature] = {}
    columns: dict[str, str] = {}
    for name, f in meta["features"].items():
        if name in DEFAULT_COLUMNS or name in EXTRA_COLUMNS or name == "action":
            continue
        key = robolearn_key(name)
        if base is not None and key in base.observation:
            obs[key] = base.observation[key]
        elif f["dtype"] in ("video", "image"):
            obs[key] = Feature(tuple(f["shape"]), "uint8", "pixel")
        else:
            obs[key] = Feature(tuple(f["shape"]), f["dtype"], "", tuple(f.get("names") or ()))
        columns[key] = name
    a = meta["features"]["action"]
    action = base.action if base else Feature(tuple(a["shape"]), a["dtype"], "", tuple(a.get("names") or ()))
    info = DatasetInfo(observation=obs, action=action, fps=float(meta["fps"]),
                       env_id=base.env_id if base else "",
                       robot=base.robot if base else (meta.get("robot_type") or ""),
                       task=base.task if base else "", extra={"imported_from": str(src)})
    return info, columns


def _read_frames(path: Path) -> np.ndarray:
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, "ffmpeg")
    try:
        return np.stack([np.asarray(f, np.uint8) for f in reader])
    finally:
        reader.close()


def import_lerobot(src: str | Path, out: str | Path) -> Path:
    """Read a LeRobotDataset v3.0 directory ``src`` into a new robolearn dataset at ``out``."""
    src, out = Path(src), Path(out)
    info_path = src / "meta/info.json"
    if not info_path.is_file():
        raise DatasetError(f"{src} is not a LeRobot dataset: meta/info.json is missing")
    meta = json.loads(info_path.read_text())
    if not str(meta.get("codebase_version", "")).startswith("v3"):
        version = meta.get("codebase_version")
        raise DatasetError(f"{info_path}: codebase_version {version!r}; only LeRobot v3.x is supported")
    info, columns = _import_info(src, meta)
    data = pa.concat_tables([pq.read_table(p) for p in sorted((src / "data").rglob("*.parquet"))])
    episodes = pq.read_table(sorted((src / "meta/episodes").rglob("*.parquet"))).to_pylist()
    videos: dict[tuple[str, int, int], np.ndarray] = {}
    with EpisodeWriter(out, info) as writer:
        for row in sorted(episodes, key=lambda r: r["episode_index"]):
            lo, hi = int(row["dataset_from_index"]), int(row["dataset_to_index"])
            table = data.slice(lo, hi - lo)
            obs = {}
            for key, col in columns.items():
                feat = info.observation[key]
                if meta["features"][col]["dtype"] == "video":
                    obs[key] = _episode_frames(src, meta, row, col, hi - lo, videos)
                elif meta["features"][col]["dtype"] == "image":
                    obs[key] = _decode_images(table[col])
                else:
                    obs[key] = from_fixed_list(table[col], feat.shape, feat.dtype)
            names = table.column_names
            writer.begin_episode(seed=row.get("seed"), meta={"lerobot_episode_index": row["episode_index"]})
            writer.add_steps(
                obs,
                from_fixed_list(table["action"], info.action.shape, info.action.dtype),
                reward=table["next.reward"].to_numpy() if "next.reward" in names else None,
                is_success=table["next.success"].to_numpy() if "next.success" in names else None,
                intervention=table["intervention"].to_numpy() if "intervention" in names else None,
                timestamp=(table["step_time"] if "step_time" in names else table["timestamp"]).to_numpy(),
            )
            writer.end_episode(success=row.get("success"))
    return out


def _episode_frames(src: Path, meta: dict[str, Any], row: dict[str, Any], col: str, n: int,
                    cache: dict[tuple[str, int, int], np.ndarray]) -> np.ndarray:
    """Frames ``(n, H, W, 3)`` of one episode from its (cached, fully decoded) video file."""
    chunk, file = int(row[f"videos/{col}/chunk_index"]), int(row[f"videos/{col}/file_index"])
    if (col, chunk, file) not in cache:
        path = src / meta["video_path"].format(video_key=col, chunk_index=chunk, file_index=file)
        cache[(col, chunk, file)] = _read_frames(path)
    frames = cache[(col, chunk, file)]
    first = int(round(float(row[f"videos/{col}/from_timestamp"]) * float(meta["fps"])))
    if first + n > len(frames):
        raise DatasetError(f"video for {col} has {len(frames)} frames; episode {row['episode_index']} needs "
                           f"frames {first}..{first + n - 1}")
    return frames[first:first + n]


def _decode_images(column: pa.ChunkedArray) -> np.ndarray:
    import cv2

    frames = []
    for item in column.to_pylist():
        img = cv2.imdecode(np.frombuffer(item["bytes"], np.uint8), cv2.IMREAD_COLOR)
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return np.stack(frames)
