"""Demonstration relabelling for the residual's offline buffer: one frame per base call against batched rows.

Loads a robolearn dataset and a base checkpoint (a pipeline run's ``data`` and ``base``: e.g. the QuadHover
preset's, ``configs/pipelines/quad_hover.yaml``) and relabels ``--episodes`` of its episodes with the
residual method's ``relabel`` (the base's action for each frame): one frame per call (the reference, on
the first ``--ref-episodes``: its cost per frame does not depend on how many), then ``--batch`` episodes
side by side, one per batch row (:func:`robolearn.refine.warm_start.relabel_episodes`, on all of them), in
interleaved rounds. Prints frames per second (median and min), the speed-up measured in the same round,
and the largest difference of the base inputs between the two paths (float rounding of batched products).

    python bench/relabel_throughput.py --data runs/pipeline/quad_hover/data --base runs/pipeline/quad_hover/base
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import numpy as np

from robolearn.datasets.reader import EpisodeDataset
from robolearn.policy_factory import load_policy
from robolearn.refine.common import ActionScaler
from robolearn.refine.methods.residual import BASE_NOISE, ResidualMethod, sampled_base
from robolearn.refine.residual import BASE_KEY
from robolearn.refine.warm_start import relabel_episodes
from robolearn.rl.threads import set_torch_threads
from robolearn.sim.registry import gym_make


def _relabel(spec: str, env_id: str, episodes: list[dict[str, np.ndarray]], batch: int,
             base_noise: str = "random") -> tuple[float, list]:
    """Seconds to relabel ``episodes`` with a freshly loaded base (sampled as the residual's
    ``params.base_noise`` says), and the frames."""
    env = gym_make(env_id)
    base = sampled_base(load_policy(spec, env_id, seed=0), base_noise)
    wrapper = SimpleNamespace(base=base, scaler=ActionScaler(env.action_space), plan_steps=0)
    env.close()
    t0 = time.perf_counter()
    frames = relabel_episodes(episodes, wrapper, ResidualMethod().relabel(wrapper), batch=batch, progress=False)
    return time.perf_counter() - t0, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="robolearn dataset directory")
    parser.add_argument("--base", required=True, help="base policy checkpoint or run directory")
    parser.add_argument("--env", default="robolearn/QuadHover-v0")
    parser.add_argument("--episodes", type=int, default=100, help="episodes relabelled in batches per round")
    parser.add_argument("--ref-episodes", type=int, default=8, help="episodes relabelled one frame per call")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base-noise", choices=BASE_NOISE, default="random",
                        help="the residual's params.base_noise (zero: the presets' zero-noise base)")
    args = parser.parse_args()
    set_torch_threads(1)
    data = EpisodeDataset(args.data)
    keys = list(load_policy(args.base, args.env, seed=0).shapes)
    episodes = [{k: data.episode(i).obs[k] for k in keys} for i in range(min(args.episodes, len(data)))]
    n = sum(len(next(iter(ep.values()))) for ep in episodes)
    n_ref = sum(len(next(iter(ep.values()))) for ep in episodes[: args.ref_episodes])
    print(f"{args.env}: {len(episodes)} of {len(data)} episodes, {n} frames ({n_ref} one per call)")
    rates: dict[int, list[float]] = {b: [] for b in [1, *args.batch]}
    diff = 0.0
    for _ in range(args.rounds):
        ref_s, ref = _relabel(args.base, args.env, episodes[: args.ref_episodes], 1, args.base_noise)
        rates[1].append(n_ref / ref_s)
        for b in args.batch:
            s, out = _relabel(args.base, args.env, episodes, b, args.base_noise)
            rates[b].append(n / s)
            diff = max(diff, max(float(np.abs(o[BASE_KEY] - r[BASE_KEY]).max())
                                 for re, oe in zip(ref, out[: len(ref)], strict=True)
                                 for r, o in zip(re, oe, strict=True)))
        print("  round: " + ", ".join(f"batch {b}: {rates[b][-1]:.0f} frames/s" for b in rates))
    for b, values in rates.items():
        ratios = [v / r for r, v in zip(rates[1], values, strict=True)]
        print(f"  batch {b:>4}: {statistics.median(values):7.0f} frames/s (min {min(values):.0f}); "
              f"{statistics.median(ratios):5.1f}x the per-frame path (min {min(ratios):.1f}x); "
              f"all {data.num_steps} frames ~{data.num_steps / statistics.median(values):.0f} s")
    print(f"  largest base_action difference to the per-frame path: {diff:.2e} (normalized units)")


if __name__ == "__main__":
    main()
