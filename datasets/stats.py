"""Per-feature normalization statistics (min / max / mean / std) of an episode dataset.

Each committed episode stores *sufficient statistics* per feature in its index record: ``count``,
``sum``, ``sumsq``, ``min`` and ``max`` (float64, per element for state vectors, per channel for images
in pixel/255 units). Dataset statistics over any subset of episodes (e.g. the training split) are then
exact and cheap to aggregate, without reading the data again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from robolearn.datasets.format import DatasetInfo, EpisodeRecord, is_image


def episode_sufficient_stats(
    info: DatasetInfo, obs: Mapping[str, np.ndarray], action: np.ndarray
) -> dict[str, dict[str, list]]:
    """Sufficient statistics of one episode.

    ``obs[key]`` is ``(T, *shape)``; ``action`` is ``(T, Da)``. Images ``(T, H, W, 3)`` uint8 are
    reduced per channel after scaling to [0, 1]. Keys are observation keys plus ``"action"``.
    """
    out: dict[str, dict[str, list]] = {}
    arrays = {**{k: (obs[k], info.observation[k]) for k in info.observation}, "action": (action, info.action)}
    for key, (values, feat) in arrays.items():
        if values.shape[0] == 0:
            continue
        if is_image(feat):
            out[key] = _image_stats(values)
            continue
        x = values.reshape(values.shape[0], -1).astype(np.float64)
        out[key] = {
            "count": [int(x.shape[0])],
            "sum": x.sum(0).tolist(),
            "sumsq": np.square(x).sum(0).tolist(),
            "min": x.min(0).tolist(),
            "max": x.max(0).tolist(),
        }
    return out


def _image_stats(images: np.ndarray) -> dict[str, list]:
    """Exact per-channel statistics of uint8 images ``(T, H, W, 3)`` in [0, 1] units, via histograms."""
    pixels = images.reshape(-1, 3)
    levels = np.arange(256, dtype=np.float64) / 255.0
    hist = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)]).astype(np.float64)
    present = hist > 0
    return {
        "count": [int(pixels.shape[0])],
        "sum": (hist @ levels).tolist(),
        "sumsq": (hist @ levels**2).tolist(),
        "min": [float(levels[np.argmax(p)]) for p in present],
        "max": [float(levels[255 - np.argmax(p[::-1])]) for p in present],
    }


def merge_sufficient(
    a: dict[str, dict[str, list]], b: dict[str, dict[str, list]]
) -> dict[str, dict[str, list]]:
    """Combine two sufficient-statistics dicts (e.g. two chunks of one episode, or two episodes)."""
    out = dict(a)
    for key, s in b.items():
        if key not in out:
            out[key] = s
            continue
        t = out[key]
        out[key] = {
            "count": [t["count"][0] + s["count"][0]],
            "sum": (np.asarray(t["sum"]) + s["sum"]).tolist(),
            "sumsq": (np.asarray(t["sumsq"]) + s["sumsq"]).tolist(),
            "min": np.minimum(t["min"], s["min"]).tolist(),
            "max": np.maximum(t["max"], s["max"]).tolist(),
        }
    return out


def aggregate(info: DatasetInfo, records: Iterable[EpisodeRecord]) -> dict[str, dict[str, Any]]:
    """Dataset statistics ``{key: {min, max, mean, std, count}}`` over ``records``.

    Arrays have the feature's shape (``(3,)`` per channel for images, in pixel/255 units); ``count`` is
    the number of samples (steps, or pixels for images). Keys without data are left out.
    """
    acc: dict[str, dict[str, list]] = {}
    for rec in records:
        acc = merge_sufficient(acc, rec.stats)
    out: dict[str, dict[str, Any]] = {}
    feats = {**info.observation, "action": info.action}
    for key, raw in acc.items():
        a = {k: np.asarray(v, np.float64) for k, v in raw.items()}
        n = float(a["count"][0])
        mean = a["sum"] / n
        var = np.maximum(a["sumsq"] / n - mean**2, 0.0)
        shape = (3,) if key in feats and is_image(feats[key]) else feats[key].shape if key in feats else (-1,)
        out[key] = {
            "min": a["min"].reshape(shape),
            "max": a["max"].reshape(shape),
            "mean": mean.reshape(shape),
            "std": np.sqrt(var).reshape(shape),
            "count": int(n),
        }
    return out


def stats_to_json(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Arrays -> nested lists, for ``meta/stats.json``."""
    return {
        key: {k: (np.asarray(v).tolist() if k != "count" else int(v)) for k, v in s.items()}
        for key, s in stats.items()
    }

