"""``robolearn train``: train a base policy (BC or diffusion) from demonstrations."""

from __future__ import annotations

import argparse

from robolearn.core.config import describe, load_config

HELP = "Train a BC or diffusion policy from a demonstration dataset (resumes an existing run directory)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robolearn.train import TrainConfig

    parser.add_argument("--config", help="YAML preset with TrainConfig keys, e.g. configs/bc/panda_lift_diffusion.yaml")
    parser.add_argument("--data", help="dataset directory (data.path)")
    parser.add_argument("--run-dir", help="output directory; an existing run there is resumed (run_dir)")
    parser.add_argument("--steps", type=int, help="gradient steps (steps)")
    parser.add_argument("--episodes", type=int, help="train on the first N episodes only (data.max_episodes)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. policy.horizon=16 optim.lr=3e-4")
    parser.epilog = "config keys:\n" + "\n".join(describe(TrainConfig))


def run(args: argparse.Namespace) -> int:
    from robolearn.train import TrainConfig, train

    flags = {"data.path": args.data, "run_dir": args.run_dir, "steps": args.steps,
             "data.max_episodes": args.episodes, "seed": args.seed}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    cfg = load_config(TrainConfig, args.config, overrides + list(args.overrides))
    result = train(cfg)
    loss = result.metrics.get("loss")
    print(f"{result.run_dir}: {result.step} steps, last loss {loss if loss is None else f'{loss:.4f}'}, "
          f"checkpoint {result.checkpoint}")
    return 0
