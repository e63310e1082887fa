"""Small synthetic datasets for the dataset tests (real writer, real files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robolearn.core.durable import file_sha256
from robolearn.core.protocols import Feature
from robolearn.datasets.format import INDEX_PATH, DatasetInfo
from robolearn.datasets.reader import EpisodeDataset
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
                  start: int = 0, images: str | None = None) -> list[dict[str, np.ndarray]]:
    """Write episodes with the given lengths step by step (frames stored as ``images``: raw, png, jpeg...);
    returns their arrays."""
    info = make_info(image)
    arrays = []
    with EpisodeWriter(root, info, flush_every=4, images=images) as writer:
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


def set_record(root: Path, index: int, **fields: object) -> None:
    """Rewrite one index record as a received, hand-edited index would have it."""
    path = root / INDEX_PATH
    records = [json.loads(line) for line in path.read_text().splitlines()]
    records[index].update(fields)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def replace_file(root: Path, index: int, table: pa.Table, metadata: dict | None = None) -> None:
    """Write ``table`` as episode ``index``'s file with a matching record (size and sha256), as a sender
    who made the file elsewhere would."""
    rec = EpisodeDataset(root).records[index]
    path = root / rec.file
    if metadata is None:  # keep robolearn's footer keys, not the Arrow schema of the old columns
        metadata = {k: v for k, v in pq.read_metadata(path).metadata.items() if k.startswith(b"robolearn.")}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    set_record(root, index, bytes=path.stat().st_size, sha256=file_sha256(path))
