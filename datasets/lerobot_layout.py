"""The LeRobotDataset v3.0 conventions that export and import share.

What LeRobot (``src/lerobot/datasets/utils.py``) reads, restated here so robolearn writes and checks it
without depending on the lerobot package:

* ``meta/info.json``: ``codebase_version`` ``"v3.0"``, an integer ``fps``, ``chunks_size`` files per chunk
  directory, and the path templates ``data_path`` / ``video_path`` below;
* each non-video feature becomes one data column by its ``shape``: ``(1,)`` a scalar of ``dtype``,
  ``(n,)`` a length-``n`` list of ``dtype``, ``"image"`` a ``{bytes, path}`` struct; ``"video"`` features
  have no data column, their frames live in ``videos/<key>/chunk-XXX/file-XXX.mp4``, located per episode
  by ``videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}`` in ``meta/episodes/``;
* every frame has ``timestamp`` (float32, ``frame_index / fps``), ``frame_index``, ``episode_index``,
  ``index`` (global) and ``task_index`` (int64); feature names contain no ``/``.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetError, is_image, resolve_inside, to_fixed_list

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
CHUNKS_SIZE = 1000
"""Files per ``chunk-XXX`` directory (LeRobot's ``DEFAULT_CHUNK_SIZE``)."""
DATA_FILE_MB = 100
VIDEO_FILE_MB = 500
DEFAULT_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
EXTRA_COLUMNS = ("next.reward", "next.success", "next.done", "intervention", "step_time")
CODEC_NAMES = {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1", "libx265": "hevc"}
"""ffmpeg encoder -> the stream codec name LeRobot records in ``video.codec``."""
TEMPLATE_FIELDS = {"chunk_index", "file_index", "video_key", "episode_index", "episode_chunk"}


def lerobot_key(obs_key: str, feature: Feature) -> str:
    """``joint_pos`` -> ``observation.joint_pos``; ``pixels/front`` -> ``observation.images.front``."""
    if is_image(feature):
        return "observation.images." + obs_key.removeprefix("pixels/").replace("/", "_")
    return "observation." + obs_key


def robolearn_key(key: str) -> str:
    """The inverse of :func:`lerobot_key`."""
    if key.startswith("observation.images."):
        return "pixels/" + key.removeprefix("observation.images.")
    return key.removeprefix("observation.")


def chunk_file(n: int) -> tuple[int, int]:
    """``(chunk_index, file_index)`` of the ``n``-th file of a kind (``CHUNKS_SIZE`` files per chunk)."""
    return divmod(int(n), CHUNKS_SIZE)


def integer_fps(fps: float, source: str) -> int:
    """``fps`` as LeRobot's integer frame rate; :class:`DatasetError` when it is not a whole number."""
    if fps <= 0 or abs(fps - round(fps)) > 1e-6:
        raise DatasetError(
            f"{source} records at {fps} Hz; LeRobot v3 needs a whole number of frames per second: "
            "collect at an integer control rate to export this dataset"
        )
    return int(round(fps))


def column_for(values: np.ndarray, shape: tuple[int, ...]) -> pa.Array:
    """A LeRobot data column for ``values`` ``(T, *shape)``: a scalar for shape ``(1,)``, else a
    fixed-size list of the flattened elements (the feature's shape is declared flattened too)."""
    if tuple(shape) == (1,):
        return pa.array(np.ascontiguousarray(values).reshape(-1))
    size = int(np.prod(shape))
    return to_fixed_list(values, pa.list_(pa.from_numpy_dtype(values.dtype), size))


def column_values(column: pa.ChunkedArray, shape: tuple[int, ...], dtype: str, name: str) -> np.ndarray:
    """LeRobot data column ``name`` (scalar, fixed-size or variable list) -> numpy ``(T, *shape)``."""
    chunks = column.chunks
    listed = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if chunks and any(test(chunks[0].type) for test in listed):
        flat = np.concatenate([c.flatten().to_numpy(zero_copy_only=False) for c in chunks])
    else:
        flat = column.to_numpy()
    expected = len(column) * int(np.prod(shape))
    if flat.size != expected:
        raise DatasetError(f"column {name!r} holds {flat.size} values for {len(column)} frames; info.json "
                           f"says shape {tuple(shape)}")
    return flat.astype(dtype, copy=False).reshape(-1, *shape)


def feature_names(feature: dict[str, Any]) -> tuple[str, ...]:
    """LeRobot ``names``: a list, ``{"motors": [...]}`` (one or more groups, concatenated) or None."""
    names = feature.get("names")
    if isinstance(names, dict):
        return tuple(str(n) for group in names.values() for n in (group or []))
    return tuple(str(n) for n in names or ())


def video_hwc(feature: dict[str, Any]) -> tuple[int, int, int]:
    """``(H, W, C)`` of a LeRobot video/image feature, whose shape may be listed channels first."""
    shape = tuple(int(s) for s in feature["shape"])
    if len(shape) != 3:
        raise DatasetError(f"a camera feature has shape {shape}; LeRobot cameras are (H, W, C) or (C, H, W)")
    names = list(feature.get("names") or [])
    if names and str(names[0]).startswith("channel"):
        return shape[1], shape[2], shape[0]
    return shape[0], shape[1], shape[2]


def format_path(root: Path, template: str, what: str, **fields: Any) -> Path:
    """``root / template.format(**fields)`` for a template from a received ``info.json``.

    Only plain ``{name}`` / ``{name:03d}`` fields of LeRobot's templates are allowed (no attribute or index
    access), and the result must stay inside ``root`` (see :func:`resolve_inside`).
    """
    try:
        parsed = list(string.Formatter().parse(str(template)))
    except ValueError as err:
        raise DatasetError(f"{what}: template {template!r} is malformed ({err})") from err
    for _, name, _, _ in parsed:
        if name is not None and name not in TEMPLATE_FIELDS:
            raise DatasetError(f"{what}: template {template!r} uses field {{{name}}}; LeRobot templates only "
                               f"use {sorted(TEMPLATE_FIELDS)}")
    try:
        relative = str(template).format(**fields)
    except (KeyError, ValueError) as err:
        raise DatasetError(f"{what}: template {template!r} cannot be filled ({err})") from err
    return resolve_inside(root, relative, what, fix=f"correct {what} in {root / 'meta/info.json'}")
