"""Small synthetic datasets for the dataset tests (real writer, real files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetInfo
from robolearn.datasets.writer import EpisodeWriter


def make_info(image: bool = False) -> DatasetInfo:
    obs = {"joint_pos": Feature((3,), "float32", "rad"), "gripper": Feature((1,), "float32", "closure")}
    if image:
        obs["pixels/front"] = Feature((12, 16, 3), "uint8", "pixel")
    return DatasetInfo(observation=obs, action=Feature((2,), "float32", "m"), fps=20.0, env_id="test/Toy-v0")


def smooth_image(t: int, h: int = 12, w: int = 16) -> np.ndarray:
    """A smooth, slowly changing RGB image (video-codec friendly)."""
    y, x = np.mgrid[:h, :w]
    img = np.stack([40 + 4 * x + 2 * t, 60 + 5 * y, np.full_like(x, 120 + t)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def episode_arrays(e: int, length: int, image: bool = False) -> dict[str, np.ndarray]:
    """Deterministic arrays of episode ``e``: values encode (episode, step) so windows are checkable."""
    t = np.arange(length, dtype=np.float32)
    out = {
        "joint_pos": np.stack([np.full(length, e, np.float32), t, t * 0.5 + e], 1),
        "gripper": (t[:, None] / max(length, 1)).astype(np.float32),
        "action": np.stack([1000.0 * e + t, -t], 1).astype(np.float32),
    }
    if image:
        out["pixels/front"] = np.stack([smooth_image(int(k) + e) for k in t])
    return out


def write_dataset(root: Path, lengths: list[int], image: bool = False, success: list[bool] | None = None,
                  start: int = 0) -> list[dict[str, np.ndarray]]:
    """Write episodes with the given lengths step by step; returns their arrays."""
    info = make_info(image)
    arrays = []
    with EpisodeWriter(root, info, flush_every=4) as writer:
        for i, n in enumerate(lengths):
            e = start + i
            a = episode_arrays(e, n, image)
            writer.begin_episode(seed=e)
            for t in range(n):
                obs = {k: a[k][t] for k in info.observation}
                writer.add_step(obs, a["action"][t], reward=float(t), is_success=t == n - 1,
                                intervention=t % 2 == 0)
            writer.end_episode(success=None if success is None else success[i])
            arrays.append(a)
    return arrays
