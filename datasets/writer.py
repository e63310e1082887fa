"""Crash-safe, append-only episode writer.

Commit protocol of one episode (see FORMAT.md):

1. steps stream into ``data/episode_NNNNNN.parquet.partial`` (a Parquet row group every
   ``flush_every`` steps, so a long teleop episode never sits wholly in memory);
2. ``end_episode`` writes the footer (holding the episode record), fsyncs, renames the file to
   ``episode_NNNNNN.parquet`` and fsyncs the directory;
3. the episode's record is appended to ``meta/episodes.jsonl`` in one ``write`` + fsync: the commit.

A writer killed at any point leaves every earlier episode untouched; the next writer (or
``robolearn dataset repair``) deletes the ``.partial`` file, drops a torn last index line, and re-indexes a
complete, renamed file whose index line was never written. One writer at a time holds
``meta/writer.lock`` (an ``flock``, released by the kernel when the process dies).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.core.durable import file_sha256
from robolearn.datasets.format import (
    DATA_DIR,
    EPISODE_META_KEY,
    INDEX_PATH,
    INFO_META_KEY,
    INFO_PATH,
    PARTIAL_SUFFIX,
    STATS_PATH,
    DatasetError,
    DatasetInfo,
    EpisodeRecord,
    ImageEncoding,
    append_line,
    arrow_schema,
    atomic_write_json,
    column_name,
    episode_file,
    file_number,
    fsync_dir,
    is_image,
    next_file_number,
    read_index,
    read_info,
    to_fixed_list,
)
from robolearn.datasets.images import stored_frames
from robolearn.datasets.recovery import acquire_lock, recover_leftovers
from robolearn.datasets.stats import aggregate, episode_sufficient_stats, merge_sufficient, stats_to_json

ZSTD_LEVEL = 3
"""Parquet zstd level of episode files: with PandaLift's front+wrist 84x84 frames stored raw, files 7% smaller than
at Arrow's default level 1, written and read as fast; level 9 is 17% smaller but writes at 0.6x
(bench/dataset_images.py)."""


def write_stats_snapshot(root: Path, info: DatasetInfo, records: list[EpisodeRecord]) -> None:
    """Rewrite ``meta/stats.json`` from the index records (atomic)."""
    atomic_write_json(root / STATS_PATH, stats_to_json(aggregate(info, records)))


class EpisodeWriter:
    """Append episodes to a dataset at ``root``, creating it (``info`` required) if it does not exist.

    Opening an existing dataset resumes it: ``info``, when given, must describe the same features, and
    leftovers of a crashed writer are cleaned up first. Use as a context manager or call ``close()``.
    ``images`` chooses how camera frames are stored (``raw``, ``png``, ``jpeg`` or ``jpeg:<quality>``; see
    :class:`ImageEncoding`); it is recorded in ``meta/info.json``. None: ``info.images`` for a new dataset,
    the existing dataset's encoding when appending (an explicit other one is refused).
    """

    def __init__(
        self,
        root: str | Path,
        info: DatasetInfo | None = None,
        *,
        flush_every: int = 64,
        compression: str = "zstd",
        compression_level: int | None = ZSTD_LEVEL,
        images: str | ImageEncoding | None = None,
    ) -> None:
        self.root = Path(root)
        self.flush_every = int(flush_every)
        self.compression, self.compression_level = compression, compression_level
        encoding = ImageEncoding.parse(images) if isinstance(images, str) else images
        self.info = self._open_or_create(info, encoding)
        self.schema = arrow_schema(self.info)
        self._lock_fd: int | None = acquire_lock(self.root)
        recover_leftovers(self.root)
        self.records, _ = read_index(self.root)
        self._next_number = next_file_number(self.root, self.records)
        self._pq: pq.ParquetWriter | None = None
        self._buffer: list[dict[str, Any]] = []
        self._episode: dict[str, Any] | None = None

    # ------------------------------------------------------------------ setup
    def _open_or_create(self, info: DatasetInfo | None, images: ImageEncoding | None) -> DatasetInfo:
        if (self.root / INFO_PATH).exists() or (self.root / INDEX_PATH).exists():
            existing = read_info(self.root)  # a lost info.json with episodes there: repair rebuilds it
            if info is not None and (diff := existing.same_features(info)):
                raise DatasetError(f"cannot append to {self.root}: {diff}")
            if images is not None and images != existing.images:
                raise DatasetError(f"cannot append to {self.root} with images={images}: it stores images as "
                                   f"{existing.images}; leave images unset to append, or write a new dataset")
            return existing
        if info is None:
            raise DatasetError(f"no dataset at {self.root} and no DatasetInfo given to create one")
        if images is not None:
            info = dataclasses.replace(info, images=images)
        (self.root / "meta").mkdir(parents=True, exist_ok=True)
        (self.root / DATA_DIR).mkdir(exist_ok=True)
        atomic_write_json(self.root / INFO_PATH, info.to_dict())
        fsync_dir(self.root)
        return info

    @property
    def num_episodes(self) -> int:
        return len(self.records)

    @property
    def recording(self) -> bool:
        """True while an episode is open."""
        return self._episode is not None

    @property
    def episode_length(self) -> int:
        """Steps recorded so far in the open episode (0 when none is open)."""
        return 0 if self._episode is None else int(self._episode["length"])

    # ------------------------------------------------------------------ episodes
    def begin_episode(self, seed: int | None = None, meta: Mapping[str, Any] | None = None) -> int:
        """Start the next episode; returns its index."""
        if self._lock_fd is None:
            raise DatasetError(f"{self.root}: writer is closed")
        if self._episode is not None:
            raise DatasetError("begin_episode called while an episode is open; end or discard it first")
        index = len(self.records)
        file = episode_file(self._next_number)
        path = self.root / (file + PARTIAL_SUFFIX)
        self._pq = pq.ParquetWriter(
            path, self.schema, compression=self.compression, compression_level=self.compression_level,
            use_dictionary=False, write_statistics=False,
        )
        self._episode = {"index": index, "file": file, "path": path, "seed": seed, "meta": dict(meta or {}),
                         "length": 0, "interventions": 0, "stats": {}, "last_success": False}
        return index

    def add_step(
        self,
        obs: Mapping[str, Any],
        action: Any,
        reward: float = 0.0,
        is_success: bool = False,
        intervention: bool = False,
        timestamp: float | None = None,
    ) -> None:
        """Record one step: ``obs`` seen at step t (unbatched, one array per feature), ``action`` taken
        then ``(Da,)``, the ``reward`` that followed, ``is_success`` after the step, whether a person was
        in control (``intervention``) and the step time in s since episode start (default ``t / fps``).
        Keys of ``obs`` that are not dataset features are ignored.
        """
        ep = self._episode
        if ep is None:
            raise DatasetError("add_step called with no open episode; call begin_episode first")
        row: dict[str, Any] = {}
        for key, feat in self.info.observation.items():
            if key not in obs:
                raise DatasetError(f"observation is missing feature {key!r}; it has {sorted(obs)}")
            row[key] = _checked(obs[key], feat.shape, feat.dtype, f"observation {key!r}")
        row["action"] = _checked(action, self.info.action.shape, self.info.action.dtype, "action")
        t = ep["length"]
        row["reward"] = float(reward)
        row["is_success"] = bool(is_success)
        row["intervention"] = bool(intervention)
        row["timestamp"] = float(t / self.info.fps if timestamp is None else timestamp)
        row["frame_index"] = t
        self._buffer.append(row)
        ep["length"] = t + 1
        ep["interventions"] += int(bool(intervention))
        ep["last_success"] = bool(is_success)
        if len(self._buffer) >= self.flush_every:
            self._flush()

    def add_steps(
        self,
        obs: Mapping[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray | None = None,
        is_success: np.ndarray | None = None,
        intervention: np.ndarray | None = None,
        timestamp: np.ndarray | None = None,
    ) -> None:
        """Record ``T`` steps at once: ``obs[key]`` ``(T, *shape)``, ``action`` ``(T, Da)``, the others
        ``(T,)`` (defaults: 0 reward, no success, no intervention, ``t / fps`` timestamps)."""
        ep = self._episode
        if ep is None:
            raise DatasetError("add_steps called with no open episode; call begin_episode first")
        self._flush()
        action = np.asarray(action)
        n = action.shape[0]
        cols: dict[str, np.ndarray] = {}
        for key, feat in self.info.observation.items():
            if key not in obs:
                raise DatasetError(f"observation is missing feature {key!r}; it has {sorted(obs)}")
            cols[key] = _checked(obs[key], (n, *feat.shape), feat.dtype, f"observation {key!r}")
        cols["action"] = _checked(action, (n, *self.info.action.shape), self.info.action.dtype, "action")
        t0 = ep["length"]
        frames = np.arange(t0, t0 + n, dtype=np.int64)
        per_step = {
            "reward": np.zeros(n, np.float32) if reward is None else np.asarray(reward, np.float32),
            "is_success": np.zeros(n, bool) if is_success is None else np.asarray(is_success, bool),
            "intervention": np.zeros(n, bool) if intervention is None else np.asarray(intervention, bool),
            "timestamp": frames / self.info.fps if timestamp is None else np.asarray(timestamp, np.float64),
            "frame_index": frames,
        }
        for name, values in per_step.items():
            if values.shape != (n,):
                raise DatasetError(f"{name} has shape {values.shape}, expected ({n},) like the action")
        self._write_arrays({**cols, **per_step})
        ep["length"] = t0 + n
        ep["interventions"] += int(per_step["intervention"].sum())
        if n:
            ep["last_success"] = bool(per_step["is_success"][-1])

    def _flush(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        keys = [*self.info.observation, "action"]
        arrays = {k: np.stack([r[k] for r in rows]) for k in keys}
        for name in ("reward", "is_success", "intervention", "timestamp", "frame_index"):
            arrays[name] = np.array([r[name] for r in rows])
        self._write_arrays(arrays)

    def _write_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Write one row group; ``arrays`` holds every observation key, ``action`` and the step columns."""
        assert self._pq is not None and self._episode is not None
        obs, columns = {}, []
        for key, feat in self.info.observation.items():
            if is_image(feat) and self.info.images.codec != "raw":
                column, obs[key] = stored_frames(arrays[key], self.info.images, f"observation {key!r}")
            else:
                obs[key] = arrays[key]
                column = to_fixed_list(obs[key], self.schema.field(column_name(key)).type)
            columns.append(column)
        columns.append(to_fixed_list(arrays["action"], self.schema.field("action").type))
        for name in ("reward", "is_success", "intervention", "timestamp", "frame_index"):
            columns.append(pa.array(arrays[name], type=self.schema.field(name).type))
        self._pq.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        ep = self._episode
        chunk_stats = episode_sufficient_stats(self.info, obs, arrays["action"])
        ep["stats"] = merge_sufficient(ep["stats"], chunk_stats)

    def end_episode(
        self, success: bool | None = None, terminated: bool = False, truncated: bool = False
    ) -> EpisodeRecord:
        """Commit the open episode. ``success`` defaults to the last step's ``is_success``."""
        ep = self._episode
        if ep is None or self._pq is None:
            raise DatasetError("end_episode called with no open episode")
        if ep["length"] == 0:
            raise DatasetError("cannot commit an empty episode (no add_step since begin_episode); discard it")
        self._flush()
        record = EpisodeRecord(
            index=ep["index"], file=ep["file"], length=ep["length"],
            success=bool(ep["last_success"] if success is None else success), terminated=bool(terminated),
            truncated=bool(truncated), interventions=ep["interventions"], seed=ep["seed"],
            stats=ep["stats"], meta=ep["meta"],
        )
        footer = {k: v for k, v in record.to_dict().items() if k not in ("bytes", "sha256")}
        self._pq.add_key_value_metadata(
            {EPISODE_META_KEY: json.dumps(footer), INFO_META_KEY: json.dumps(self.info.to_dict())}
        )
        self._pq.close()
        self._pq = None
        self._episode = None
        return self._commit(ep["path"], record)

    def _commit(self, partial: Path, record: EpisodeRecord) -> EpisodeRecord:
        """fsync + rename ``partial`` to ``record.file``, then append the record (the commit point)."""
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        final = self.root / record.file
        os.replace(partial, final)
        fsync_dir(final.parent)
        record.bytes = final.stat().st_size
        record.sha256 = file_sha256(final)
        append_line(self.root / INDEX_PATH, json.dumps(record.to_dict()))
        self.records.append(record)
        self._next_number = max(self._next_number, (file_number(record.file) or 0) + 1)
        return record

    def add_episode_file(self, source: str | Path, record: EpisodeRecord) -> EpisodeRecord:
        """Commit a copy of another dataset's episode file (same features) byte for byte (merge)."""
        if self._episode is not None:
            raise DatasetError("add_episode_file called while an episode is open")
        file = episode_file(self._next_number)
        partial = self.root / (file + PARTIAL_SUFFIX)
        shutil.copyfile(source, partial)
        new = EpisodeRecord.from_dict({**record.to_dict(), "index": len(self.records), "file": file})
        return self._commit(partial, new)

    def discard_episode(self) -> None:
        """Drop the open episode (nothing is committed); a no-op when none is open."""
        if self._episode is None:
            return
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        self._episode["path"].unlink(missing_ok=True)
        self._buffer = []
        self._episode = None

    def close(self) -> None:
        """Discard an open episode, refresh ``meta/stats.json`` and release the lock."""
        if self._lock_fd is None:
            return
        self.discard_episode()
        write_stats_snapshot(self.root, self.info, self.records)
        os.close(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked(value: Any, shape: tuple[int, ...], dtype: str, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != tuple(shape):
        if arr.size == int(np.prod(shape)) and arr.squeeze().shape == np.empty(shape).squeeze().shape:
            arr = arr.reshape(shape)
        else:
            raise DatasetError(f"{what} has shape {arr.shape}, the dataset expects {tuple(shape)}")
    if dtype == "uint8" and arr.dtype != np.uint8:
        raise DatasetError(f"{what} has dtype {arr.dtype}, the dataset expects uint8 images")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DatasetError(f"{what} contains NaN or inf")
    return arr.astype(dtype, copy=False)
