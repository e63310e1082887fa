"""Import a LeRobotDataset v3.0 directory, as LeRobot's own writer lays it out, into a robolearn dataset.

Every path comes from the received ``meta/info.json`` templates and episode rows and is checked to stay
inside the source directory (see :func:`robolearn.datasets.lerobot_layout.format_path`). Data columns may
be scalars (shape ``(1,)``), fixed-size or variable lists; ``names`` may be a list or ``{"motors": [...]}``;
camera features may be ``video`` (decoded with ffmpeg, located by ``from_timestamp``) or ``image``
(PNG/JPEG bytes in the data). ``meta/robolearn.json``, when present (a robolearn export), restores units,
env id and task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetError, DatasetInfo, ImageEncoding, resolve_inside
from robolearn.datasets.images import decode_frames
from robolearn.datasets.lerobot_layout import (
    DATA_PATH,
    DEFAULT_COLUMNS,
    EXTRA_COLUMNS,
    TASKS_PATH,
    column_values,
    feature_names,
    format_path,
    robolearn_key,
    video_hwc,
)
from robolearn.datasets.writer import EpisodeWriter


def _read_meta(src: Path) -> dict[str, Any]:
    info_path = src / "meta/info.json"
    if not info_path.is_file():
        raise DatasetError(f"{src} is not a LeRobot dataset: meta/info.json is missing")
    try:
        meta = json.loads(info_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{info_path} is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or not str(meta.get("codebase_version", "")).startswith("v3"):
        version = meta.get("codebase_version") if isinstance(meta, dict) else None
        raise DatasetError(f"{info_path}: codebase_version {version!r}; only LeRobot v3.x is supported "
                           "(convert older datasets with LeRobot's v3 conversion script)")
    for key in ("features", "fps"):
        if key not in meta:
            raise DatasetError(f"{info_path} has no {key!r}: not a LeRobot v3 dataset")
    if "action" not in meta["features"]:
        raise DatasetError(f"{info_path}: the dataset has no 'action' feature; robolearn needs one")
    return meta


def _first_task(src: Path) -> str:
    path = src / TASKS_PATH
    if not path.is_file():
        return ""
    import pandas as pd

    tasks = pd.read_parquet(resolve_inside(src, TASKS_PATH, TASKS_PATH, fix="replace it with a regular file"))
    return str(tasks.index[0]) if len(tasks) else ""


def _import_info(src: Path, meta: dict[str, Any]) -> tuple[DatasetInfo, dict[str, str]]:
    """The robolearn info for a LeRobot dataset and the map robolearn obs key -> LeRobot column."""
    own = src / "meta/robolearn.json"
    if own.is_file() or own.is_symlink():
        own = resolve_inside(src, "meta/robolearn.json", "meta/robolearn.json", fix="replace it with a regular file")
        base: DatasetInfo | None = DatasetInfo.from_dict(json.loads(own.read_text()), str(own))
    else:
        base = None
    obs: dict[str, Feature] = {}
    columns: dict[str, str] = {}
    for name, f in meta["features"].items():
        if name in DEFAULT_COLUMNS or name in EXTRA_COLUMNS or name == "action":
            continue
        key = robolearn_key(name).replace(".", "_")
        if base is not None and key in base.observation:
            obs[key] = base.observation[key]
        elif f["dtype"] in ("video", "image"):
            obs[key] = Feature(video_hwc(f), "uint8", "pixel")
        else:
            obs[key] = Feature(tuple(int(s) for s in f["shape"]), f["dtype"], "", feature_names(f))
        columns[key] = name
    a = meta["features"]["action"]
    action = base.action if base else Feature(tuple(int(s) for s in a["shape"]), a["dtype"], "", feature_names(a))
    info = DatasetInfo(observation=obs, action=action, fps=float(meta["fps"]),
                       env_id=base.env_id if base else "",
                       robot=base.robot if base else (meta.get("robot_type") or ""),
                       task=base.task if base else _first_task(src), extra={"imported_from": str(src)},
                       images=base.images if base else ImageEncoding())
    return info, columns


def _episode_rows(src: Path) -> list[dict[str, Any]]:
    files = sorted((src / "meta/episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DatasetError(f"{src}: no meta/episodes/chunk-*/file-*.parquet; not a LeRobot v3 dataset")
    rows: list[dict[str, Any]] = []
    for path in files:
        resolve_inside(src, str(path.relative_to(src)), "meta/episodes", fix="replace that file with a regular one")
        table = pq.read_table(path)
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        rows += table.select(keep).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


class _Files:
    """Data tables and decoded videos of the source, each read once, every path checked."""

    def __init__(self, src: Path, meta: dict[str, Any]) -> None:
        self.src, self.meta = src, meta
        self.tables: dict[tuple[int, int], pa.Table] = {}
        self.videos: dict[tuple[str, int, int], np.ndarray] = {}

    def episode_table(self, row: dict[str, Any]) -> pa.Table:
        ep = int(row["episode_index"])
        where = (int(row.get("data/chunk_index") or 0), int(row.get("data/file_index") or 0))
        if where not in self.tables:
            path = format_path(self.src, self.meta.get("data_path") or DATA_PATH, "info.json data_path",
                               chunk_index=where[0], file_index=where[1], episode_index=ep, episode_chunk=where[0])
            if not path.is_file():
                raise DatasetError(f"{path} is missing (episode {ep}'s data file)")
            self.tables[where] = pq.read_table(path)
        table = self.tables[where]
        table = table.filter(pc.equal(table["episode_index"], ep))
        if "length" in row and table.num_rows != int(row["length"]):
            raise DatasetError(f"episode {ep}: its data file holds {table.num_rows} frames, meta/episodes "
                               f"says {row['length']}")
        return table.sort_by("frame_index") if "frame_index" in table.column_names else table

    def frames(self, row: dict[str, Any], col: str, n: int) -> np.ndarray:
        """Frames ``(n, H, W, 3)`` of one episode from its (cached, fully decoded) video file."""
        chunk, file = int(row[f"videos/{col}/chunk_index"]), int(row[f"videos/{col}/file_index"])
        if (col, chunk, file) not in self.videos:
            path = format_path(self.src, self.meta.get("video_path") or "", "info.json video_path",
                               video_key=col, chunk_index=chunk, file_index=file,
                               episode_index=int(row["episode_index"]), episode_chunk=chunk)
            if not path.is_file():
                raise DatasetError(f"{path} is missing (episode {row['episode_index']}'s {col} video)")
            self.videos[(col, chunk, file)] = _read_frames(path)
        frames = self.videos[(col, chunk, file)]
        first = int(round(float(row[f"videos/{col}/from_timestamp"]) * float(self.meta["fps"])))
        if first + n > len(frames):
            raise DatasetError(f"video for {col} has {len(frames)} frames; episode {row['episode_index']} "
                               f"needs frames {first}..{first + n - 1}")
        return frames[first:first + n]


def import_lerobot(src: str | Path, out: str | Path, images: str | ImageEncoding | None = None) -> Path:
    """Read a LeRobotDataset v3.0 directory ``src`` into a new robolearn dataset at ``out``, its camera frames
    stored as ``images`` (see :class:`ImageEncoding`; None: as the robolearn dataset it was exported from
    stored them, else raw)."""
    src, out = Path(src), Path(out)
    meta = _read_meta(src)
    info, columns = _import_info(src, meta)
    files = _Files(src, meta)
    with EpisodeWriter(out, info, images=images) as writer:
        for row in _episode_rows(src):
            table = files.episode_table(row)
            n = table.num_rows
            obs = {}
            for key, col in columns.items():
                feat, dtype = info.observation[key], meta["features"][col]["dtype"]
                if dtype == "video":
                    obs[key] = files.frames(row, col, n)
                elif dtype == "image":
                    obs[key] = _decode_images(table[col], feat.shape, f"{src} episode {row['episode_index']} {col!r}")
                else:
                    obs[key] = column_values(table[col], feat.shape, feat.dtype, col)
            writer.begin_episode(seed=row.get("seed"), meta={"lerobot_episode_index": row["episode_index"]})
            try:
                _add_steps(writer, info, table, obs)
            except DatasetError as err:
                writer.discard_episode()
                raise DatasetError(f"{src} episode {row['episode_index']}: {err}") from err
            writer.end_episode(success=row.get("success"))
    return out


def _add_steps(writer: EpisodeWriter, info: DatasetInfo, table: pa.Table, obs: dict[str, np.ndarray]) -> None:
    names = table.column_names
    writer.add_steps(
        obs,
        column_values(table["action"], info.action.shape, info.action.dtype, "action"),
        reward=table["next.reward"].to_numpy() if "next.reward" in names else None,
        is_success=table["next.success"].to_numpy() if "next.success" in names else None,
        intervention=table["intervention"].to_numpy() if "intervention" in names else None,
        timestamp=(table["step_time"] if "step_time" in names else table["timestamp"]).to_numpy(),
    )


def _read_frames(path: Path) -> np.ndarray:
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, "ffmpeg")
    try:
        return np.stack([np.asarray(f, np.uint8) for f in reader])
    finally:
        reader.close()


def _decode_images(column: pa.ChunkedArray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A LeRobot ``image`` column (``{bytes, path}`` structs of PNG or JPEG) -> ``(T, H, W, 3)`` uint8; every
    frame's header must declare the feature's height and width before it is decoded."""
    items = [item.get("bytes") if isinstance(item, dict) else None for item in column.to_pylist()]
    return decode_frames(items, shape, None, what)
