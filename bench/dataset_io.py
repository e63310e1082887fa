"""Episode dataset I/O throughput, and whether loading keeps up with diffusion-policy training.

In one run, on synthetic PandaLift-shaped episodes (9 state features, 35 floats, Da=5, 100 steps):

* write: ``EpisodeWriter.add_step`` one step at a time (the collection / teleop path), including the
  fsync + rename + index commit of every episode: steps/s and MB/s of the files written;
* read: ``EpisodeDataset.episode`` for every episode: steps/s and MB/s;
* both for state-only episodes and for episodes with one 84x84 RGB camera;
* sampler: batches/s of a 256-window ``DataLoader`` (To=2, Tp=16) from :mod:`robolearn.datasets.sampler`;
* training: batches/s of one diffusion-policy training step (loss, backward, Adam) on the same batches,
  when ``robolearn.policies`` provides it (or pass ``--train-batches-per-s``); the sampler should be at
  least 10x faster.

    python bench/dataset_io.py [--episodes 40] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetInfo
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.sampler import WindowDataset, make_loader
from robolearn.datasets.writer import EpisodeWriter

STATE = {"joint_pos": 7, "joint_vel": 7, "ee_pos": 3, "ee_quat": 4, "gripper": 1, "object_pos": 3,
         "object_quat": 4, "goal_pos": 3, "object_to_ee": 3}
LENGTH = 100


def info(image: bool) -> DatasetInfo:
    obs = {k: Feature((n,)) for k, n in STATE.items()}
    if image:
        obs["pixels/front"] = Feature((84, 84, 3), "uint8", "pixel")
    return DatasetInfo(observation=obs, action=Feature((5,)), fps=20.0, env_id="bench")


def episode(rng: np.random.Generator, image: bool) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Smooth random-walk state and a textured, moving image (compresses like a rendered scene)."""
    walk = {k: np.cumsum(rng.normal(0, 0.01, (LENGTH, n)), 0).astype(np.float32) for k, n in STATE.items()}
    actions = rng.uniform(-1, 1, (LENGTH, 5)).astype(np.float32)
    base = (rng.uniform(0, 255, (84, 84, 3)) * 0.2 + 100).astype(np.uint8)
    steps = []
    for t in range(LENGTH):
        obs = {k: v[t] for k, v in walk.items()}
        if image:
            img = base.copy()
            img[20 + t % 40:40 + t % 40, 30:50] = (200, 40, 40)
            obs["pixels/front"] = img
        steps.append((obs, actions[t]))
    return steps


def bench_write_read(root: Path, episodes: int, image: bool) -> dict[str, float]:
    rng = np.random.default_rng(0)
    data = [episode(rng, image) for _ in range(episodes)]
    t = time.perf_counter()
    with EpisodeWriter(root, info(image)) as writer:
        for steps in data:
            writer.begin_episode()
            for obs, action in steps:
                writer.add_step(obs, action)
            writer.end_episode()
    write_s = time.perf_counter() - t
    mb = sum(p.stat().st_size for p in (root / "data").iterdir()) / 1e6
    t = time.perf_counter()
    ds = EpisodeDataset(root)
    for i in range(len(ds)):
        ds.episode(i)
    read_s = time.perf_counter() - t
    n = episodes * LENGTH
    return {"steps": n, "mb_on_disk": mb, "write_steps_per_s": n / write_s, "write_mb_per_s": mb / write_s,
            "read_steps_per_s": n / read_s, "read_mb_per_s": mb / read_s}


def bench_sampler(root: Path, batches: int) -> tuple[float, list[dict]]:
    windows = WindowDataset(root, obs_horizon=2, action_horizon=16)
    loader = make_loader(windows, batch_size=256, shuffle=True)
    kept, n = [], 0
    t = time.perf_counter()
    while n < batches:
        for batch in loader:
            if len(kept) < 4:
                kept.append(batch)
            n += 1
            if n >= batches:
                break
    return n / (time.perf_counter() - t), kept


def bench_train_step(root: Path, batches: list[dict], repeats: int) -> float | None:
    """Batches/s of the diffusion policy's training step (None when robolearn.policies lacks it)."""
    try:
        from robolearn.policies.checkpoint import make_policy
        from robolearn.policies.configuration import PolicyConfig
    except ImportError:
        return None
    cfg = PolicyConfig(type="diffusion", obs_shapes={k: [n] for k, n in STATE.items()}, action_dim=5,
                       n_obs_steps=2, horizon=16, n_action_steps=8)
    policy = make_policy(cfg)
    policy.set_stats(EpisodeDataset(root).stats())
    opt = torch.optim.Adam(policy.parameters(), lr=1e-4)
    policy.train()

    def step(batch: dict) -> None:
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(batches[0])
    t = time.perf_counter()
    for i in range(repeats):
        step(batches[i % len(batches)])
    return repeats / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40, help="episodes of 100 steps per dataset")
    parser.add_argument("--batches", type=int, default=200, help="sampler batches to time")
    parser.add_argument("--train-steps", type=int, default=3, help="training steps to time")
    parser.add_argument("--train-batches-per-s", type=float, help="use this training rate instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, image in (("state", False), ("image84", True)):
            r = bench_write_read(Path(tmp) / name, args.episodes, image)
            results[name] = r
            print(f"{name:>8}: write {r['write_steps_per_s']:9.0f} steps/s {r['write_mb_per_s']:7.1f} MB/s | "
                  f"read {r['read_steps_per_s']:9.0f} steps/s {r['read_mb_per_s']:7.1f} MB/s | "
                  f"{r['mb_on_disk']:.1f} MB for {r['steps']} steps")
        rate, kept = bench_sampler(Path(tmp) / "state", args.batches)
        image_rate, _ = bench_sampler(Path(tmp) / "image84", max(args.batches // 4, 10))
        print(f" sampler: {rate:.0f} batches/s state-only, {image_rate:.0f} batches/s with 84x84 images "
              "(batch 256, To=2, Tp=16)")
        train = args.train_batches_per_s or bench_train_step(Path(tmp) / "state", kept, args.train_steps)
    results["sampler_batches_per_s"] = {"state": rate, "image84": image_rate}
    if train:
        results["train_batches_per_s"] = train
        results["sampler_over_train"] = rate / train
        verdict = "OK" if rate >= 10 * train else "TOO SLOW"
        print(f"   train: {train:.1f} batches/s (diffusion step, batch 256): sampler is {rate / train:.0f}x "
              f"-> {verdict} (need >= 10x)")
    else:
        print("   train: robolearn.policies has no diffusion training step; pass --train-batches-per-s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
