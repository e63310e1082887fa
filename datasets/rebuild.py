"""Rebuild a missing or damaged ``meta/info.json`` from the episode files (run by ``repair``).

Every episode file the writer commits holds the dataset info in its Parquet footer (key
``robolearn.info``), so the info comes back exactly, units and provenance included. Files written before
the footer held it still describe their features in the Parquet schema: state and action widths and
dtypes come from the fixed-size list columns and fps from the timestamps; units are then unknown, and an
image's height and width are not recoverable (only ``H*W*3`` is), which is reported instead of guessed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.core.protocols import Feature
from robolearn.datasets.format import (
    DATA_DIR,
    INFO_META_KEY,
    INFO_PATH,
    OBS_PREFIX,
    DatasetCorruptError,
    DatasetError,
    DatasetInfo,
)


def episode_files(root: Path) -> list[Path]:
    """The regular (non-symlink) episode files in ``data/``, in file-number order."""
    data = root / DATA_DIR
    if not data.is_dir():
        return []
    return sorted(p for p in data.glob("episode_*.parquet") if p.is_file() and not p.is_symlink())


def info_from_files(root: Path) -> tuple[DatasetInfo, str]:
    """The dataset info stored in (or, for old files, implied by) the episode files; and how it was found.

    Raises :class:`DatasetCorruptError` naming what is missing when no file tells enough.
    """
    legacy: Path | None = None
    for path in episode_files(root):
        try:
            stored = (pq.read_metadata(path).metadata or {}).get(INFO_META_KEY)
        except (pa.ArrowException, OSError):
            continue  # torn or damaged: repair quarantines it later
        if stored is None:
            legacy = legacy or path
            continue
        try:
            return DatasetInfo.from_dict(json.loads(stored), str(path)), f"the footer of {DATA_DIR}/{path.name}"
        except (DatasetError, KeyError, TypeError, ValueError):
            continue
    if legacy is None:
        raise DatasetCorruptError(
            f"{root}: cannot rebuild {INFO_PATH}: no readable episode file in {DATA_DIR}/; restore "
            f"{INFO_PATH} from a copy of the dataset"
        )
    return _info_from_schema(legacy), f"the columns of {DATA_DIR}/{legacy.name} (units unknown)"


def _numpy_dtype(arrow_type: pa.DataType) -> str:
    return np.dtype(arrow_type.to_pandas_dtype()).name


def _info_from_schema(path: Path) -> DatasetInfo:
    """Features from an old episode file's Parquet schema and fps from its timestamps."""
    cant = f"cannot rebuild {INFO_PATH} from {path} (written before files stored the info)"
    schema = pq.read_schema(path)
    obs: dict[str, Feature] = {}
    for fld in schema:
        if not fld.name.startswith(OBS_PREFIX):
            continue
        key = fld.name.removeprefix(OBS_PREFIX)
        if not isinstance(fld.type, pa.FixedSizeListType):
            raise DatasetCorruptError(
                f"{cant}: image {key!r} holds {fld.type} and its height and width are not stored; "
                f"restore {INFO_PATH} from a copy of the dataset"
            )
        obs[key] = Feature((fld.type.list_size,), _numpy_dtype(fld.type.value_type), "")
    act = schema.field("action").type
    stamps = pq.read_table(path, columns=["timestamp"])["timestamp"].to_numpy()
    steps = np.diff(stamps)
    if steps.size == 0 or not np.all(steps > 0):
        raise DatasetCorruptError(f"{cant}: its timestamps do not give a rate; restore {INFO_PATH} from a copy")
    fps = float(np.round(1.0 / np.median(steps), 6))
    return DatasetInfo(observation=obs, action=Feature((act.list_size,), _numpy_dtype(act.value_type), ""),
                       fps=fps, extra={"rebuilt_from": path.name})
