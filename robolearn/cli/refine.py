"""``robolearn refine``: refine a frozen base policy with residual RL, DSRL or DSRL-NA (or RLPD from scratch)."""

from __future__ import annotations

import argparse

from robolearn.core.config import describe
from robolearn.refine.config import RefineConfig, load_refine_config
from robolearn.refine.methods import METHODS

HELP = "Refine a frozen base policy with off-policy RL (residual, dsrl, dsrl-na; rlpd = SAC from scratch)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML preset (see configs/refine/)")
    parser.add_argument("--method", choices=list(METHODS), help="refinement method")
    parser.add_argument("--base", help="base policy: checkpoint dir or expert:noise=X")
    parser.add_argument("--env", help="env id")
    parser.add_argument("--demos", help="robolearn dataset dir, or a policy like expert:noise=0 to roll out")
    parser.add_argument("--steps", type=int, help="total env steps (total_env_steps)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--run-dir", help="run directory (default runs/refine-<method>-<task>-<time>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its latest checkpoint (uses its config.yaml)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (0: torch's default); one is fastest for these small networks")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. learner.num_critics=10")
    methods = [f"  params of {name} ({m.params_type.__name__}):\n" + "\n".join(describe(m.params_type, "params."))
               for name, m in METHODS.items() if m.params_type.keys()]
    parser.epilog = "config keys:\n" + "\n".join(describe(RefineConfig)) + "\n\n" + "\n".join(methods)


def run(args: argparse.Namespace) -> int:
    from robolearn.refine.loop import train
    from robolearn.rl.threads import set_torch_threads
    from robolearn.sim.registry import task
    from robolearn.wiring import refine_sources

    set_torch_threads(args.threads)

    flags = {"method": args.method, "base": args.base, "env_id": args.env, "demos": args.demos,
             "total_env_steps": args.steps, "seed": args.seed}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = load_refine_config(args.config, overrides, args.run_dir, args.resume,
                             time_limit=lambda env_id: task(env_id).max_episode_steps)
    result = train(cfg, refine_sources(cfg), run_dir=args.run_dir, resume=args.resume)
    for row in result.evals:
        print(f"  env steps {row['env_steps']:>7d}: success {row['success_rate']:.3f}  "
              f"return {row['mean_return']:.3f}  length {row.get('mean_length', float('nan')):.1f}")
    for fault in result.faults:
        print(f"  fault: {fault.splitlines()[0]}")
    if result.actor_restarts:
        print(f"  {result.actor_restarts} actor restarts, {result.lost_env_steps} env steps lost")
    per_10k = result.wall_s / max(result.env_steps, 1) * 1e4
    print(f"{result.env_steps} env steps in {result.wall_s:.0f} s ({per_10k:.0f} s per 10k steps), "
          f"{result.updates} updates at {result.updates_per_s:.1f} updates/s")
    print(f"  run dir: {result.run_dir}")
    return 0
