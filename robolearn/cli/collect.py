"""``robolearn collect``: record demonstrations of a policy into an episode dataset."""

from __future__ import annotations

import argparse

from robolearn.collect import CollectConfig, collect
from robolearn.core.config import describe, load_config
from robolearn.rl.threads import set_torch_threads

HELP = "Record policy rollouts (the scripted expert by default) into a crash-safe episode dataset."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML preset with CollectConfig keys")
    parser.add_argument("--env", help="env id")
    parser.add_argument("--policy", help="expert, random, zero or module:Class")
    parser.add_argument("--episodes", type=int, help="episodes to add")
    parser.add_argument("--out", help="dataset directory (appended to when it exists)")
    parser.add_argument("--noise", type=float, help="expert sub-optimality, for imperfect demos")
    parser.add_argument("--only-success", action="store_true", default=None,
                        help="keep successful episodes only")
    parser.add_argument("--num-envs", type=int, help="envs stepped in lockstep (batched policy calls)")
    parser.add_argument("--camera", action="append",
                        help="record this camera as pixels/<camera> (repeatable)")
    parser.add_argument("--image-size", type=int, help="camera image width and height (pixels)")
    parser.add_argument("--images", help="image storage: raw, png (lossless), jpeg or jpeg:<quality>")
    parser.add_argument("--seed", type=int)
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. max_attempts=500")
    parser.epilog = "config keys:\n" + "\n".join(describe(CollectConfig))


def run(args: argparse.Namespace) -> int:
    flags = {"env_id": args.env, "policy": args.policy, "episodes": args.episodes, "out": args.out,
             "noise": args.noise, "only_success": args.only_success, "num_envs": args.num_envs,
             "cameras": f"[{','.join(args.camera)}]" if args.camera else None, "image_size": args.image_size,
             "images": args.images, "seed": args.seed}
    overrides = [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                 for k, v in flags.items() if v is not None]
    set_torch_threads()  # one torch thread: the policy shares the cores with MuJoCo
    cfg = load_config(CollectConfig, args.config, overrides + list(args.overrides))
    result = collect(cfg)
    print(f"{cfg.out}: kept {result.kept} episodes ({result.steps} steps) from {result.attempts} attempts, "
          f"{result.successes} successful")
    return 0 if result.kept == cfg.episodes else 1
