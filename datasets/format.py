"""The robolearn episode dataset format: layout, metadata, errors and crash-safe file helpers.

A dataset is a directory (see ``datasets/FORMAT.md`` for the full description)::

    <root>/meta/info.json        DatasetInfo: env id, robot, fps, features (written once, atomically)
    <root>/meta/episodes.jsonl   the commit log: one JSON line per committed episode (EpisodeRecord)
    <root>/meta/stats.json       normalization statistics (a snapshot; episodes.jsonl is authoritative)
    <root>/data/episode_NNNNNN.parquet           one Parquet file per committed episode
    <root>/data/episode_NNNNNN.parquet.partial   an episode being written (never read as data)

An episode exists once its line is in ``episodes.jsonl``; the data file is fsynced and renamed into place
before that line is appended, so a crash at any point leaves every earlier episode intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from robolearn.core.durable import append_line, atomic_write_bytes, atomic_write_json, fsync_dir  # noqa: F401
from robolearn.core.protocols import Feature

FORMAT_NAME = "robolearn-episodes"
FORMAT_VERSION = 2
"""Version 2 adds compressed image storage (``images`` in info.json); a raw-image dataset is still written as
version 1, so readers older than version 2 keep reading it."""
INFO_PATH = "meta/info.json"
INDEX_PATH = "meta/episodes.jsonl"
STATS_PATH = "meta/stats.json"
LOCK_PATH = "meta/writer.lock"
DATA_DIR = "data"
PARTIAL_SUFFIX = ".partial"
EPISODE_META_KEY = b"robolearn.episode"
"""Parquet footer key holding the episode's record, so an index line can be rebuilt from its file."""
INFO_META_KEY = b"robolearn.info"
"""Parquet footer key holding the dataset's ``meta/info.json``, so repair can rebuild a lost one."""

OBS_PREFIX = "obs."
STEP_COLUMNS = ("action", "reward", "is_success", "intervention", "timestamp", "frame_index")
"""Per-step columns besides the observations (``obs.<key>``)."""
REPAIR_HINT = "run `robolearn dataset repair {root}`"


class DatasetError(ValueError):
    """A dataset that cannot be opened or written as asked (missing, wrong features, locked...).

    The message is one line: line breaks in it (an embedded library message, e.g. pyarrow's) become spaces.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).split()))


class DatasetCorruptError(DatasetError):
    """A committed file is torn, truncated or modified; the message names it and the repair command."""


def resolve_inside(root: Path, relative: str, what: str, fix: str = "") -> Path:
    """``root / relative`` after checking that it stays inside ``root``.

    ``relative`` comes from a received file (an index record, a LeRobot path template), so it must be a
    relative path without ``..`` whose real location, symlinks followed, is under ``root``. ``what`` names
    the record it came from, ``fix`` what to do (default: for index records, repair). Raises
    :class:`DatasetCorruptError` (one line: the path, the record, the fix).
    """
    text = str(relative)
    rel = Path(text)
    problem = None
    if not text or rel.is_absolute():
        problem = "is empty" if not text else "is absolute"
    elif ".." in rel.parts:
        problem = "contains '..'"
    else:
        real, base = (root / rel).resolve(), root.resolve()
        if real != base and base not in real.parents:
            problem = f"is a symlink to {real}, outside the dataset"
    if problem:
        fix = fix or f"`robolearn dataset repair {root}` drops such index records, moving nothing outside"
        raise DatasetCorruptError(f"{what}: path {text!r} {problem}; it must stay inside {root}: {fix}")
    return root / rel


def episode_file(index: int) -> str:
    """Relative path of episode ``index``'s data file."""
    return f"{DATA_DIR}/episode_{index:06d}.parquet"


def is_image(feature: Feature) -> bool:
    """An RGB camera feature: uint8 ``(H, W, 3)``."""
    return feature.dtype == "uint8" and len(feature.shape) == 3 and feature.shape[-1] == 3


IMAGE_CODECS = ("raw", "png", "jpeg")


@dataclass(frozen=True)
class ImageEncoding:
    """How the dataset stores camera frames: one value per frame in its ``obs.pixels/<cam>`` column.

    ``raw``: the ``H*W*3`` RGB bytes (fixed-size binary; Parquet's zstd compresses them); ``png``: a lossless
    PNG per frame; ``jpeg``: a JPEG per frame at ``quality`` (lossy). Readers decode transparently.
    """

    codec: str = "raw"
    """``raw``, ``png`` or ``jpeg``."""
    quality: int = 95
    """JPEG quality, 1..100 (ignored by the other codecs)."""

    def __post_init__(self) -> None:
        if self.codec not in IMAGE_CODECS:
            raise DatasetError(f"image codec {self.codec!r} is unknown: use one of {', '.join(IMAGE_CODECS)}")
        if not 1 <= int(self.quality) <= 100:
            raise DatasetError(f"JPEG quality {self.quality} is out of range: use 1..100 (e.g. jpeg:95)")

    @classmethod
    def parse(cls, text: str) -> ImageEncoding:
        """``raw``, ``png``, ``jpeg`` or ``jpeg:<quality>`` (the writer option and the CLI flag)."""
        codec, _, quality = str(text).strip().lower().partition(":")
        if quality and (codec != "jpeg" or not quality.isdigit()):
            raise DatasetError(f"image encoding {text!r}: only jpeg takes a quality, as jpeg:<1..100>")
        return cls(codec, int(quality) if quality else 95)

    def __str__(self) -> str:
        return f"jpeg:{self.quality}" if self.codec == "jpeg" else self.codec

    def to_dict(self) -> dict[str, Any]:
        return {"codec": self.codec, "quality": self.quality} if self.codec == "jpeg" else {"codec": self.codec}

    @classmethod
    def from_dict(cls, data: Any) -> ImageEncoding:
        if not isinstance(data, dict):
            raise DatasetError(f"info.json 'images' must be an object like {{\"codec\": \"png\"}}, got {data!r}")
        return cls(str(data.get("codec", "raw")), int(data.get("quality", 95)))


def feature_from_dict(data: dict[str, Any]) -> Feature:
    return Feature(
        shape=tuple(int(s) for s in data["shape"]),
        dtype=str(data.get("dtype", "float32")),
        units=str(data.get("units", "")),
        names=tuple(data.get("names") or ()),
    )


@dataclass
class DatasetInfo:
    """Dataset-level metadata (``meta/info.json``).

    ``observation`` maps observation keys (``joint_pos``, ``pixels/front``...) to features; images are
    uint8 ``(H, W, 3)``. ``action`` is the action feature, float32 ``(Da,)`` in physical units.
    """

    observation: dict[str, Feature]
    action: Feature
    fps: float
    """Control rate (Hz): one step every ``1 / fps`` s."""
    env_id: str = ""
    robot: str = ""
    task: str = ""
    """A one-line description of the task (exported as the LeRobot task string)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (collection policy, noise, command line...)."""
    images: ImageEncoding = field(default_factory=ImageEncoding)
    """How camera frames are stored (raw bytes, PNG or JPEG per frame)."""

    def __post_init__(self) -> None:
        if not self.observation:
            raise DatasetError("DatasetInfo needs at least one observation feature")
        if self.fps <= 0:
            raise DatasetError(f"DatasetInfo.fps must be positive, got {self.fps}")
        for key, feat in self.observation.items():
            if "." in key or not key:
                raise DatasetError(f"observation key {key!r} must be non-empty and contain no '.'")
            np.dtype(feat.dtype)  # raises TypeError on an unknown dtype

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": 1 if self.images.codec == "raw" else FORMAT_VERSION,
            "env_id": self.env_id,
            "robot": self.robot,
            "task": self.task,
            "fps": self.fps,
            "features": {
                "observation": {k: f.to_dict() for k, f in self.observation.items()},
                "action": self.action.to_dict(),
            },
            "extra": self.extra,
            "images": self.images.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "info.json") -> DatasetInfo:
        if data.get("format") != FORMAT_NAME:
            raise DatasetError(f"{source}: not a robolearn dataset (format={data.get('format')!r})")
        if int(data.get("version", -1)) > FORMAT_VERSION:
            raise DatasetError(f"{source}: format version {data['version']} is newer than {FORMAT_VERSION}")
        feats = data["features"]
        return cls(
            observation={k: feature_from_dict(v) for k, v in feats["observation"].items()},
            action=feature_from_dict(feats["action"]),
            fps=float(data["fps"]),
            env_id=data.get("env_id", ""),
            robot=data.get("robot", ""),
            task=data.get("task", ""),
            extra=dict(data.get("extra") or {}),
            images=ImageEncoding.from_dict(data.get("images", {})),
        )

    def same_features(self, other: DatasetInfo) -> str | None:
        """None when both describe the same data; else a sentence naming the first difference."""
        if set(self.observation) != set(other.observation):
            return f"observation keys differ: {sorted(self.observation)} vs {sorted(other.observation)}"
        for key, feat in self.observation.items():
            o = other.observation[key]
            if (feat.shape, feat.dtype) != (o.shape, o.dtype):
                return f"observation {key!r}: {feat.shape} {feat.dtype} vs {o.shape} {o.dtype}"
        if (self.action.shape, self.action.dtype) != (other.action.shape, other.action.dtype):
            return f"action: {self.action.shape} vs {other.action.shape}"
        if abs(self.fps - other.fps) > 1e-9:
            return f"fps: {self.fps} vs {other.fps}"
        return None


@dataclass
class EpisodeRecord:
    """One committed episode: a line of ``meta/episodes.jsonl``."""

    index: int
    file: str
    length: int
    success: bool
    terminated: bool = False
    truncated: bool = False
    interventions: int = 0
    """Steps during which a person was in control."""
    seed: int | None = None
    bytes: int = 0
    """Size of the data file; a mismatch on open means a truncated or replaced file."""
    sha256: str = ""
    stats: dict[str, dict[str, list]] = field(default_factory=dict)
    """Per-feature sufficient statistics: ``{key: {count, sum, sumsq, min, max}}`` (see stats.py)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ----------------------------------------------------------------------------- arrow schema
def column_name(obs_key: str) -> str:
    return OBS_PREFIX + obs_key


def arrow_schema(info: DatasetInfo) -> pa.Schema:
    """The Parquet schema of an episode file: a fixed-size list column per state feature (flattened); per
    image feature a fixed-size binary column (raw ``H*W*3`` bytes) or, for PNG/JPEG, a binary column (one
    encoded frame per step)."""
    fields = []
    for key, feat in info.observation.items():
        size = int(np.prod(feat.shape, dtype=np.int64))
        if is_image(feat):  # one value per frame: 10x faster than a list of 21k uint8 elements
            stored = pa.binary(size) if info.images.codec == "raw" else pa.binary()
            fields.append(pa.field(column_name(key), stored))
        else:
            fields.append(pa.field(column_name(key), pa.list_(pa.from_numpy_dtype(np.dtype(feat.dtype)), size)))
    size = int(np.prod(info.action.shape, dtype=np.int64))
    fields += [
        pa.field("action", pa.list_(pa.from_numpy_dtype(np.dtype(info.action.dtype)), size)),
        pa.field("reward", pa.float32()),
        pa.field("is_success", pa.bool_()),
        pa.field("intervention", pa.bool_()),
        pa.field("timestamp", pa.float64()),
        pa.field("frame_index", pa.int64()),
    ]
    return pa.schema(fields)


def to_fixed_list(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """``(T, *shape)`` array -> ``T`` rows of a fixed-size list (or fixed-size binary) column."""
    flat = np.ascontiguousarray(values).reshape(-1)
    if isinstance(arrow_type, pa.FixedSizeBinaryType):
        return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(flat)])
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=arrow_type.value_type), arrow_type.list_size)


def _flat(chunk: pa.Array) -> np.ndarray:
    if isinstance(chunk.type, pa.FixedSizeBinaryType):
        width = chunk.type.byte_width
        raw = np.frombuffer(chunk.buffers()[1], np.uint8)
        return raw[chunk.offset * width:(chunk.offset + len(chunk)) * width]
    return chunk.flatten().to_numpy(zero_copy_only=False)


def from_fixed_list(column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """A fixed-size list (or binary) column -> numpy ``(T, *shape)`` of ``dtype``."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [_flat(c) for c in chunks]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype)
    return flat.astype(dtype, copy=False).reshape(-1, *shape)


def read_info(root: Path) -> DatasetInfo:
    """The dataset's :class:`DatasetInfo`; a missing or damaged ``meta/info.json`` of a directory that holds
    episodes raises :class:`DatasetCorruptError` naming ``robolearn dataset repair`` (which rebuilds it)."""
    path = root / INFO_PATH
    hint = REPAIR_HINT.format(root=root) + " to rebuild it from the episode files"
    if not root.is_dir():
        raise DatasetError(f"no dataset at {root}: directory does not exist")
    if not path.is_file():
        if (root / INDEX_PATH).is_file() or any((root / DATA_DIR).glob("episode_*.parquet")):
            raise DatasetCorruptError(f"{root}: {INFO_PATH} is missing but episodes are there; {hint}")
        raise DatasetError(f"no dataset at {root}: {INFO_PATH} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetCorruptError(f"{path} is not valid JSON ({err}); {hint}") from err
    try:
        return DatasetInfo.from_dict(data, str(path))
    except DatasetError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DatasetCorruptError(f"{path} is damaged ({type(err).__name__}: {err}); {hint}") from err


def read_index(root: Path) -> tuple[list[EpisodeRecord], str | None]:
    """Committed records and, if present, the torn last line a crash left (an uncommitted episode).

    A bad line anywhere but last is corruption and raises :class:`DatasetCorruptError`.
    """
    path = root / INDEX_PATH
    if not path.exists():
        return [], None
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records = []
    for n, line in enumerate(lines, 1):
        try:
            records.append(EpisodeRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as err:
            raise DatasetCorruptError(
                f"{path} line {n} is not a valid episode record ({err}); {REPAIR_HINT.format(root=root)}"
            ) from err
    for want, rec in enumerate(records):
        if rec.index != want:
            raise DatasetCorruptError(
                f"{path}: line {want + 1} holds episode {rec.index}, expected {want}; "
                + REPAIR_HINT.format(root=root)
            )
    return records, (tail.decode(errors="replace") if tail else None)


def file_number(name: str) -> int | None:
    """``NNNNNN`` of ``episode_NNNNNN.parquet[.partial]``; None for other names."""
    base = Path(name).name
    if not base.startswith("episode_"):
        return None
    digits = base[len("episode_"):].split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def next_file_number(root: Path, records: list[EpisodeRecord]) -> int:
    """A data file number used by no committed record and no file on disk."""
    numbers = [n for r in records if (n := file_number(r.file)) is not None]
    if (root / DATA_DIR).is_dir():
        numbers += [n for p in (root / DATA_DIR).iterdir() if (n := file_number(p.name)) is not None]
    return max(numbers, default=-1) + 1
