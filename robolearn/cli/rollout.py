"""``robolearn rollout``: run a named policy for N episodes and report its success rate."""

from __future__ import annotations

import argparse

from robolearn.core.config import describe, load_config
from robolearn.rl.threads import set_torch_threads
from robolearn.rollout import RolloutConfig, run_rollouts

HELP = "Run a named policy (expert, random, zero) for N episodes; success rate with a 95 percent confidence interval."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML preset (see configs/rollout/)")
    parser.add_argument("--env", help="env id (env.id)")
    parser.add_argument("--policy", help="expert, random or zero")
    parser.add_argument("--episodes", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--noise", type=float, help="expert sub-optimality")
    parser.add_argument("--video", type=int, metavar="N", help="record N episodes as MP4")
    parser.add_argument("--dynamics", help="nominal, randomize or real-gap (env.dynamics)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. env.task.control_hz=10")
    parser.epilog = "config keys:\n" + "\n".join(describe(RolloutConfig))


def run(args: argparse.Namespace) -> int:
    flags = {"env.id": args.env, "policy": args.policy, "episodes": args.episodes, "seed": args.seed,
             "noise": args.noise, "video_episodes": args.video, "env.dynamics": args.dynamics}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    set_torch_threads()  # one torch thread: the policy shares the cores with MuJoCo
    cfg = load_config(RolloutConfig, args.config, overrides)
    from robolearn.cli.checks import check_env_id

    check_env_id(cfg.env.id)  # before run_rollouts makes the run directory
    result = run_rollouts(cfg)
    print(result.summary())
    for video in result.videos:
        print(f"  video: {video}")
    print(f"  run dir: {result.run_dir}")
    return 0
