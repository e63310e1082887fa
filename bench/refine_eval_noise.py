"""How noisy is one refinement evaluation? Re-evaluate a finished run's final actor on the same episodes.

``robolearn refine`` (and ``bench/refine_sample_efficiency.py``) score an actor with ``--episodes`` episodes
through the training wrapper, episodes seeded from 10_000 every time. Only the base policy's sampled
diffusion noise differs between two such evaluations of one actor. This script repeats that evaluation
``--repeats`` times in one process (the base's noise stream runs on, as it does across a run's
evaluations) and prints each score with their spread, next to the binomial standard deviation of a
success rate at their mean; then one large evaluation (``--large`` episodes) for the actor's rate.

    python bench/refine_eval_noise.py runs/probe-redq-u1/residual-seed1 --repeats 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a refine run directory (config.yaml and checkpoints/)")
    p.add_argument("--episodes", type=int, default=32, help="episodes per repeated evaluation")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--large", type=int, default=200, help="episodes of the final large evaluation (0: none)")
    args = p.parse_args()
    if args.episodes < 1 or args.repeats < 2:
        p.error("--episodes must be >= 1 and --repeats >= 2")

    import torch

    from robolearn.refine.config import load_refine_config
    from robolearn.refine.evaluation import EVAL_SEED, evaluate_wrapper
    from robolearn.refine.loop import make_learner, make_wrapper
    from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
    from robolearn.wiring import refine_sources

    torch.set_num_threads(1)
    config, ckpt = args.run / "config.yaml", latest_checkpoint(args.run)
    if not config.exists() or ckpt is None:
        p.error(f"{args.run} is not a refine run with a checkpoint (config.yaml, checkpoints/)")
    cfg = load_refine_config(None, [], run_dir=args.run, resume=True)  # the run's config.yaml
    env = make_wrapper(cfg, refine_sources(cfg), cfg.eval_envs, cfg.seed + 1)  # as train() builds its evaluation
    learner = make_learner(cfg, env)
    learner.load_state_dict(load_checkpoint(ckpt, {})["learner"])
    print(f"{args.run} ({ckpt.name}): {args.repeats} evaluations of {args.episodes} episodes seeded from "
          f"{EVAL_SEED}", flush=True)
    scores = []
    for i in range(args.repeats):
        scores.append(evaluate_wrapper(env, learner, args.episodes)["success_rate"])
        print(f"  evaluation {i}: {scores[-1]:.3f}", flush=True)
    mean = float(np.mean(scores))
    binomial = float(np.sqrt(mean * (1 - mean) / args.episodes))
    print(f"success {mean:.3f} mean, {min(scores):.3f}-{max(scores):.3f} range, {np.std(scores, ddof=1):.3f} std "
          f"(binomial std at the mean: {binomial:.3f})")
    if args.large:
        big = evaluate_wrapper(env, learner, args.large, seed=EVAL_SEED + 50_000)
        print(f"{args.large} episodes seeded from {EVAL_SEED + 50_000}: success {big['success_rate']:.3f}, "
              f"mean length {big['mean_length']:.1f} steps")
    env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
