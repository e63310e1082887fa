"""Training windows over an episode dataset (the diffusion-policy sampling convention).

For a sample at step ``t`` of an episode of length ``L`` (``0 <= t < L``), with observation horizon ``To``
and prediction horizon ``Tp``:

* observations at steps ``t-To+1 .. t``; steps before the episode start repeat the first observation;
* actions at steps ``t .. t+Tp-1``; steps after the episode end repeat the last action and are flagged
  in ``action_is_pad``.

A batch is ``{"obs": {key: (B, To, *shape)}, "action": (B, Tp, Da), "action_is_pad": (B, Tp)}``: state
observations and actions float32 in physical units (unnormalized; normalizers use
:meth:`EpisodeDataset.stats`), images uint8 ``(B, To, H, W, 3)`` under their key ``pixels/<camera>``.
The selected episodes are loaded into memory once; a batch is a single fancy-indexing gather per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from robolearn.datasets.reader import EpisodeDataset

Batch = dict[str, Any]


def select_episodes(dataset: EpisodeDataset, only_success: bool = False, min_length: int = 1) -> list[int]:
    """Indices of the episodes to train on: successful ones only if ``only_success``."""
    return [
        i for i, r in enumerate(dataset.records) if r.length >= min_length and (r.success or not only_success)
    ]


def split_episodes(
    episodes: Sequence[int], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Split episode indices into (train, val) by episode, reproducibly for a given ``seed``.

    At least one episode goes to validation when ``val_fraction > 0`` and there are two or more.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(np.asarray(episodes, dtype=np.int64))
    n_val = int(round(val_fraction * len(order)))
    if val_fraction > 0 and len(order) >= 2:
        n_val = max(n_val, 1)
    val, train = order[:n_val], order[n_val:]
    return sorted(train.tolist()), sorted(val.tolist())


class WindowDataset(Dataset):
    """Windows of ``obs_horizon`` observations and ``action_horizon`` actions, one per dataset step.

    ``episodes`` selects episodes by index (all by default; see :func:`select_episodes` and
    :func:`split_episodes`); ``obs_keys`` selects observation features (all by default). Supports
    batched fetching (``__getitems__``), so a ``DataLoader`` from :func:`make_loader` gathers a whole
    batch at once.
    """

    def __init__(
        self,
        dataset: EpisodeDataset | str | Path,
        obs_horizon: int = 2,
        action_horizon: int = 16,
        episodes: Sequence[int] | None = None,
        obs_keys: Sequence[str] | None = None,
    ) -> None:
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(f"horizons must be >= 1, got obs {obs_horizon}, action {action_horizon}")
        ds = dataset if isinstance(dataset, EpisodeDataset) else EpisodeDataset(dataset)
        self.dataset = ds
        self.episodes = list(range(len(ds))) if episodes is None else [int(i) for i in episodes]
        if not self.episodes:
            raise ValueError(f"{ds.root}: no episodes selected (only_success filter or empty split?)")
        self.obs_keys = list(ds.info.observation) if obs_keys is None else list(obs_keys)
        self.obs_horizon, self.action_horizon = int(obs_horizon), int(action_horizon)
        obs: dict[str, list[np.ndarray]] = {k: [] for k in self.obs_keys}
        actions, starts, ends = [], [], []
        offset = 0
        for i in self.episodes:
            ep = ds.episode(i, self.obs_keys)
            n = len(ep)
            for k in self.obs_keys:
                obs[k].append(ep.obs[k])
            actions.append(ep.action.astype(np.float32, copy=False))
            starts.append(np.full(n, offset, np.int64))
            ends.append(np.full(n, offset + n, np.int64))
            offset += n
        self.obs = {k: _stack(v, ds.info.observation[k].dtype) for k, v in obs.items()}
        self.action = np.concatenate(actions)
        self._start, self._end = np.concatenate(starts), np.concatenate(ends)
        self._obs_offsets = np.arange(-self.obs_horizon + 1, 1, dtype=np.int64)
        self._act_offsets = np.arange(self.action_horizon, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def indices(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For global steps ``(B,)``: observation rows ``(B, To)``, action rows and pad flags ``(B, Tp)``."""
        steps = np.asarray(steps, dtype=np.int64)
        if steps.size and (steps.min() < 0 or steps.max() >= len(self)):
            raise IndexError(f"window index out of range [0, {len(self)})")
        start, end = self._start[steps, None], self._end[steps, None]
        obs_rows = np.maximum(steps[:, None] + self._obs_offsets, start)
        act_rows = steps[:, None] + self._act_offsets
        pad = act_rows >= end
        return obs_rows, np.minimum(act_rows, end - 1), pad

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """A batch ``{"obs": {key: (B, To, ...)}, "action": (B, Tp, Da), "action_is_pad": (B, Tp)}``."""
        obs_rows, act_rows, pad = self.indices(np.asarray(indices))
        return {
            "obs": {k: torch.from_numpy(v[obs_rows]) for k, v in self.obs.items()},
            "action": torch.from_numpy(self.action[act_rows]),
            "action_is_pad": torch.from_numpy(pad),
        }

    def __getitem__(self, index: int) -> Batch:
        """One window, without the batch dimension."""
        batch = self.__getitems__([int(index)])
        return {
            "obs": {k: v[0] for k, v in batch["obs"].items()},
            "action": batch["action"][0],
            "action_is_pad": batch["action_is_pad"][0],
        }


def _stack(chunks: list[np.ndarray], dtype: str) -> np.ndarray:
    """Concatenate per-episode arrays; images stay uint8, everything else becomes float32."""
    out = np.concatenate(chunks)
    return out if dtype == "uint8" else out.astype(np.float32, copy=False)


def _passthrough(batch: Batch) -> Batch:
    return batch


def make_loader(
    windows: WindowDataset,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = True,
    num_workers: int = 0,
) -> DataLoader:
    """A ``DataLoader`` yielding batched dicts (see :class:`WindowDataset`), reproducible given ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        windows,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=_passthrough,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
