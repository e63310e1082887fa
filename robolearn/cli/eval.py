"""``robolearn eval``: success rate of a trained policy in sim, with a 95% confidence interval."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robolearn.rl.devices import DEVICE_HELP

HELP = "Evaluate a trained policy checkpoint (or run directory) in a sim task: success rate with 95% CI."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint directory or run directory (runs/<run>)")
    parser.add_argument("--env", required=True, help="env id, e.g. robolearn/PandaLift-v0")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=10_000, help="episode i resets with seed + i")
    parser.add_argument("--num-envs", type=int, default=8, help="envs stepped in lockstep (batched act)")
    parser.add_argument("--dynamics", default="nominal", help="nominal, randomize or real-gap")
    parser.add_argument("--visual", default="nominal",
                        help="what the cameras see (configs/visual/<task>.yaml): nominal, train or held-out")
    parser.add_argument("--scheduler", choices=["ddpm", "ddim", "dpmsolver"], help="diffusion sampler")
    parser.add_argument("--steps", type=int, help="diffusion denoising steps")
    parser.add_argument("--video", type=int, default=0, help="record the first N episodes as MP4")
    parser.add_argument("--out", help="write results (JSON) and videos here (default: <policy>/eval)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (0: torch's default); one is fastest on a shared CPU")
    parser.add_argument("--ray", metavar="auto|ADDRESS",
                        help="split the episodes by seed over Ray workers (pip install robolearn[dist]): 'auto' "
                             "joins the cluster `ray start` runs here or starts one on this machine; ADDRESS "
                             "(host:port, ray://host:10001) joins that cluster. A policy directory must be at the "
                             "same path on every node")


def default_out(policy: str) -> Path:
    """Where records go without ``--out``: ``<policy dir>/eval``, or ``runs/eval/<name>`` for a named policy
    (``expert:noise=0.5`` -> ``runs/eval/expert-noise-0.5``), never a folder named like the policy."""
    from robolearn.policy_factory import NAMED_POLICIES

    if policy.partition(":")[0] in NAMED_POLICIES:
        return Path("runs") / "eval" / policy.replace(":", "-").replace("=", "-").replace(",", "-")
    return Path(policy) / "eval"


def run(args: argparse.Namespace) -> int:
    from robolearn.cli.checks import check_observation_keys
    from robolearn.evaluate import evaluate
    from robolearn.policy_factory import load_policy
    from robolearn.rl.devices import resolve_device
    from robolearn.rl.threads import set_torch_threads

    set_torch_threads(args.threads)
    device = resolve_device(args.device)  # a bad --device fails before anything loads, for a named policy too
    if args.ray:
        from robolearn.dist.cluster import require_ray

        require_ray()  # a missing extra fails before the policy loads
    kwargs = {k: v for k, v in {"scheduler": args.scheduler, "num_inference_steps": args.steps}.items()
              if v is not None}
    policy = load_policy(args.policy, args.env, seed=args.seed, device=device, **kwargs)
    check_observation_keys(policy, args.env, args.policy)
    out = Path(args.out) if args.out else default_out(args.policy)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now, not after the episodes
    name = f"{args.env.split('/')[-1]}-{args.dynamics}" + (f"-{args.visual}" if args.visual != "nominal" else "")
    options = {"episodes": args.episodes, "seed": args.seed, "num_envs": args.num_envs, "dynamics": args.dynamics,
               "visual": args.visual,
               "video_dir": out / name if args.video else None, "videos": args.video}
    if args.ray:
        from robolearn.dist.evaluate import evaluate_ray

        del policy  # each Ray worker loads its own from the spec
        result = evaluate_ray(args.policy, args.env, address=args.ray, load_kwargs=kwargs, **options)
    else:
        result = evaluate(policy, args.env, **options)
    print(result.summary())
    record = {"env": args.env, "dynamics": args.dynamics, "visual": args.visual, "policy": str(args.policy),
              **result.scalars(),
              "episodes": result.episodes, "successes": int(sum(result.successes)),
              "videos": [str(v) for v in result.videos]}
    (out / f"{name}.json").write_text(json.dumps(record, indent=2))
    return 0
