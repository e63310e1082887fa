"""Read committed episodes of a robolearn episode dataset.

Only episodes listed in ``meta/episodes.jsonl`` exist for a reader; an episode being written by another
process (a ``.partial`` file) is invisible. Opening checks that every committed file has the size its
record says, so a truncated or replaced file is reported by name before any training starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.datasets.format import (
    INDEX_PATH,
    REPAIR_HINT,
    DatasetCorruptError,
    DatasetInfo,
    EpisodeRecord,
    column_name,
    from_fixed_list,
    is_image,
    read_index,
    read_info,
    resolve_inside,
)
from robolearn.datasets.images import decode_column
from robolearn.datasets.stats import aggregate
from robolearn.datasets.validate import column_problem, nonfinite_problem, stats_problem


@dataclass
class Episode:
    """One episode's arrays, ``T`` steps.

    ``obs[key]`` is ``(T, *shape)`` (float32 state, uint8 ``(T, H, W, 3)`` images), ``action``
    ``(T, Da)`` float32 physical units, ``reward`` ``(T,)`` float32, ``is_success`` and ``intervention``
    ``(T,)`` bool, ``timestamp`` ``(T,)`` float64 s since episode start.
    """

    record: EpisodeRecord
    obs: dict[str, np.ndarray]
    action: np.ndarray
    reward: np.ndarray
    is_success: np.ndarray
    intervention: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return int(self.action.shape[0])


class EpisodeDataset:
    """The committed episodes of the dataset at ``root``.

    ``check_sizes`` (default) compares each data file's size with its record on open: a mismatch raises
    :class:`DatasetCorruptError` naming the file and ``robolearn dataset repair``.
    """

    def __init__(self, root: str | Path, check_sizes: bool = True) -> None:
        self.root = Path(root)
        self.info: DatasetInfo = read_info(self.root)
        self.records, self.torn_tail = read_index(self.root)
        if check_sizes:
            for rec in self.records:
                self.check_file(rec)

    def check_file(self, rec: EpisodeRecord) -> Path:
        """The episode's data file path, after checking it exists with the recorded size."""
        path = resolve_inside(self.root, rec.file, f"{INDEX_PATH} episode {rec.index}")
        hint = REPAIR_HINT.format(root=self.root)
        if not path.is_file():
            raise DatasetCorruptError(f"episode {rec.index}: data file {path} is missing; {hint}")
        size = path.stat().st_size
        if rec.bytes and size != rec.bytes:
            raise DatasetCorruptError(
                f"episode {rec.index}: {path} is {size} bytes but was committed with {rec.bytes} "
                f"(truncated or modified); {hint}"
            )
        return path

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_steps(self) -> int:
        return sum(r.length for r in self.records)

    @property
    def num_success(self) -> int:
        return sum(r.success for r in self.records)

    def read_table(self, index: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Episode ``index``'s Parquet table (all columns, or ``columns``)."""
        rec = self.records[index]
        path = self.check_file(rec)
        try:
            table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        except (pa.ArrowException, OSError) as err:
            raise DatasetCorruptError(
                f"episode {rec.index}: cannot read {path} ({err}); {REPAIR_HINT.format(root=self.root)}"
            ) from err
        if table.num_rows != rec.length:
            raise DatasetCorruptError(
                f"episode {rec.index}: {path} has {table.num_rows} steps, its record says {rec.length}; "
                + REPAIR_HINT.format(root=self.root)
            )
        return table

    def episode(self, index: int, obs_keys: Sequence[str] | None = None) -> Episode:
        """Load episode ``index`` (position in the index, 0-based); ``obs_keys`` limits observations."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"episode {index} out of range: the dataset has {len(self)} episodes")
        keys = list(self.info.observation) if obs_keys is None else list(obs_keys)
        for key in keys:
            if key not in self.info.observation:
                have = sorted(self.info.observation)
                raise KeyError(f"unknown observation key {key!r}; the dataset has {have}")
        columns = [column_name(k) for k in keys]
        steps = ["action", "reward", "is_success", "intervention", "timestamp"]
        table = self.read_table(index, [*columns, *steps])
        self._check(index, column_problem(self.info, table.schema))
        obs = {k: self._observation(index, k, table[c]) for k, c in zip(keys, columns, strict=True)}
        act = self.info.action
        episode = Episode(
            record=self.records[index],
            obs=obs,
            action=from_fixed_list(table["action"], act.shape, act.dtype),
            reward=table["reward"].to_numpy().astype(np.float32),
            is_success=table["is_success"].to_numpy().astype(bool),
            intervention=table["intervention"].to_numpy().astype(bool),
            timestamp=table["timestamp"].to_numpy().astype(np.float64),
        )
        numbers = {column_name(k): v for k, v in obs.items()}
        numbers |= {"action": episode.action, "reward": episode.reward, "timestamp": episode.timestamp}
        self._check(index, nonfinite_problem(numbers))
        return episode

    def _observation(self, index: int, key: str, column: pa.ChunkedArray) -> np.ndarray:
        """Observation ``key``'s column -> ``(T, *shape)``, decoding PNG/JPEG frames (each checked against
        the feature before it is decoded; a bad one raises :class:`DatasetCorruptError` naming it)."""
        feat = self.info.observation[key]
        if not is_image(feat) or self.info.images.codec == "raw":
            return from_fixed_list(column, feat.shape, feat.dtype)
        try:
            return decode_column(column, feat.shape, self.info.images.codec, f"observation {key!r}")
        except DatasetCorruptError as err:
            self._check(index, str(err))
            raise

    def _check(self, index: int, problem: str | None) -> None:
        """Raise :class:`DatasetCorruptError` for ``problem`` found in episode ``index`` (None: fine)."""
        if problem is not None:
            rec = self.records[index]
            raise DatasetCorruptError(
                f"episode {rec.index} ({rec.file}): {problem}; {REPAIR_HINT.format(root=self.root)} "
                "to move it to quarantine/"
            )

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)

    def stats(self, episodes: Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
        """Normalization statistics ``{key: {min, max, mean, std, count}}`` over ``episodes`` (all when
        None), aggregated exactly from the per-episode records (see stats.py)."""
        indices = range(len(self)) if episodes is None else episodes
        for i in indices:
            self._check(i, stats_problem(self.records[i].stats))
        return aggregate(self.info, [self.records[i] for i in indices])

    def summary(self) -> dict[str, Any]:
        """Counts and metadata for ``robolearn dataset info``."""
        lengths = [r.length for r in self.records]
        return {
            "root": str(self.root),
            "env_id": self.info.env_id,
            "robot": self.info.robot,
            "fps": self.info.fps,
            "episodes": len(self),
            "steps": self.num_steps,
            "success": self.num_success,
            "intervention_steps": sum(r.interventions for r in self.records),
            "length_min": min(lengths, default=0),
            "length_max": max(lengths, default=0),
            "bytes": sum(r.bytes for r in self.records),
            "images": str(self.info.images),
            "observation": {k: f.to_dict() for k, f in self.info.observation.items()},
            "action": self.info.action.to_dict(),
        }
