"""How the episode dataset holds camera frames: size per 1,000 steps and read/write frames/s per encoding.

Run from the repository root: ``PYTHONPATH=. python bench/dataset_images.py`` (about two minutes on 2 cores).

Frames are real: ``robolearn collect`` records the PandaLift-v0 scripted expert with the front and wrist
cameras at 84x84 into a raw dataset once; its episodes are then written again, in every round, under each
encoding with ``EpisodeWriter.add_steps`` (the path collect takes), and read back with
``EpisodeDataset.episode`` (the path the training sampler takes). An encoding is ``raw`` (fixed-size binary
in zstd Parquet), ``png`` or ``jpeg:<quality>``, with ``@<level>`` for another Parquet zstd level than the
writer's default (``raw@1``: Arrow's default level, what the writer used before; the baseline, listed
first). Reported per encoding:

* ``KB/1k steps``: episode files on disk per 1,000 steps (both cameras and the state), and the ratio to the
  baseline;
* ``write fr/s`` / ``read fr/s``: camera frames per second written (encode + commit) and read (decode), and
  each as a ratio to the baseline's in the same round;
* ``err``: JPEG's mean absolute error against the rendered frames (pixel levels 0..255) and its PSNR (dB).

Encodings are timed in interleaved rounds (the order rotates each round); throughput and ratios are given
as the median and the worst (min) round, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from robolearn.collect import CollectConfig, collect
from robolearn.datasets.reader import Episode, EpisodeDataset
from robolearn.datasets.writer import ZSTD_LEVEL, EpisodeWriter

CAMERAS = ["front", "wrist"]


def record(root: Path, env_id: str, episodes: int, size: int) -> list[Episode]:
    """Rendered expert episodes (raw dataset at ``root``), loaded into memory."""
    collect(CollectConfig(env_id=env_id, episodes=episodes, out=str(root), cameras=CAMERAS, image_size=size,
                          num_envs=2, seed=0), progress=False)
    ds = EpisodeDataset(root)
    return [ds.episode(i) for i in range(len(ds))]


def write(root: Path, source: Path, episodes: list[Episode], encoding: str) -> float:
    """Seconds to write ``episodes`` as a new dataset at ``root`` storing frames as ``encoding``
    (``<images>[@<zstd level>]``)."""
    shutil.rmtree(root, ignore_errors=True)
    info = EpisodeDataset(source).info
    images, _, level = encoding.partition("@")
    start = time.perf_counter()
    with EpisodeWriter(root, info, images=images, compression_level=int(level) if level else ZSTD_LEVEL) as writer:
        for ep in episodes:
            writer.begin_episode(seed=ep.record.seed)
            writer.add_steps(ep.obs, ep.action, ep.reward, ep.is_success, ep.intervention, ep.timestamp)
            writer.end_episode(success=ep.record.success)
    return time.perf_counter() - start


def read(root: Path) -> tuple[float, list[Episode]]:
    """Seconds to load every episode of ``root`` (all observations), and the episodes."""
    start = time.perf_counter()
    ds = EpisodeDataset(root)
    loaded = [ds.episode(i) for i in range(len(ds))]
    return time.perf_counter() - start, loaded


def image_error(original: list[Episode], stored: list[Episode]) -> tuple[float, float]:
    """Mean absolute error (levels) and PSNR (dB) of the stored frames against the rendered ones."""
    diffs = [(b.obs[k].astype(np.float64) - a.obs[k]).ravel()
             for a, b in zip(original, stored, strict=True) for k in a.obs if k.startswith("pixels/")]
    d = np.concatenate(diffs)
    mse = float(np.mean(d**2))
    return float(np.mean(np.abs(d))), (float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse))


def _fmt(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="robolearn/PandaLift-v0")
    parser.add_argument("--episodes", type=int, default=8, help="expert episodes recorded (about 60 steps each)")
    parser.add_argument("--size", type=int, default=84, help="camera width and height (pixels)")
    parser.add_argument("--encodings", nargs="+", default=["raw@1", "raw", "raw@9", "png", "jpeg:95", "jpeg:75"],
                        help="the first is the baseline")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    encodings, base = args.encodings, args.encodings[0]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "rendered"
        episodes = record(source, args.env, args.episodes, args.size)
        steps = sum(len(ep) for ep in episodes)
        frames = steps * len(CAMERAS)
        load = os.getloadavg()[0]
        rates: dict[str, dict[str, list[float]]] = {e: {"write": [], "read": [], "wr": [], "rr": []}
                                                    for e in encodings}
        size, error = {}, {}
        for r in range(args.rounds):
            order = encodings[r % len(encodings):] + encodings[:r % len(encodings)]
            this: dict[str, tuple[float, float]] = {}
            for enc in order:
                root = Path(tmp) / enc.replace(":", "_").replace("@", "_")
                write_s = write(root, source, episodes, enc)
                read_s, stored = read(root)
                this[enc] = (frames / write_s, frames / read_s)
                size[enc] = sum(p.stat().st_size for p in (root / "data").iterdir()) / steps * 1000 / 1024
                error[enc] = image_error(episodes, stored)
            for enc, (w, rd) in this.items():
                rates[enc]["write"].append(w)
                rates[enc]["read"].append(rd)
                rates[enc]["wr"].append(w / this[base][0])
                rates[enc]["rr"].append(rd / this[base][1])
    print(f"{args.env}: {len(episodes)} expert episodes, {steps} steps, cameras {'+'.join(CAMERAS)} at "
          f"{args.size}x{args.size}, {args.rounds} interleaved rounds, load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"throughput: median (worst round); ratios to {base} measured within each round; raw without @ is "
          f"zstd level {ZSTD_LEVEL}")
    print(f"{'encoding':<9}{'KB/1k steps':>12}{'x base':>7}{'write fr/s':>18}{'x base':>14}{'read fr/s':>18}"
          f"{'x base':>14}{'err (levels, PSNR)':>22}")
    for enc in encodings:
        mae, psnr = error[enc]
        err = "exact" if mae == 0 else f"{mae:.2f}, {psnr:.1f} dB"
        row = rates[enc]
        print(f"{enc:<9}{size[enc]:>12.0f}{size[enc] / size[base]:>7.2f}{_fmt(row['write']):>18}"
              f"{_fmt(row['wr'], 2):>14}{_fmt(row['read']):>18}{_fmt(row['rr'], 2):>14}{err:>22}")


if __name__ == "__main__":
    main()
