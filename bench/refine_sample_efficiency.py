"""Sample efficiency of refinement on PandaLift: success rate vs env steps, residual RL vs RLPD from scratch.

Base: the scripted expert with noise (default 1.5, about 30% success; noise 0.6 succeeds ~100% on lift).
(a) residual RL (ResFiT, TD3) on that base; (d) SAC from scratch with the same demonstrations in the
offline buffer (RLPD). DSRL needs a generative base (``--dsrl-base runs/<diffusion run>``). Every method
gets the same env-step budget and the same evaluation (deterministic actor, episodes seeded 10_000 + i).
Prints a table with figures measured in this run (success per evaluation, wall-clock per 10k env steps,
gradient updates/s) and writes a PNG.

    python bench/refine_sample_efficiency.py --quick        # CI-sized (minutes on 2 CPU cores)
    python bench/refine_sample_efficiency.py --steps 50000 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robolearn.refine.config import RefineConfig
from robolearn.refine.loop import RefineResult, train
from robolearn.rl.learner import LearnerConfig


def config(method: str, args: argparse.Namespace, seed: int) -> RefineConfig:
    hidden = [64, 64] if args.quick else [256, 256]
    if method == "residual":
        learner = LearnerConfig(algo="td3", hidden=hidden, batch_size=args.batch, actor_delay=2, exploration_noise=0.2)
    else:
        learner = LearnerConfig(algo="sac", hidden=hidden, batch_size=args.batch, num_critics=10 if not args.quick
                                else 2)
    base = args.dsrl_base if method.startswith("dsrl") else f"expert:noise={args.noise}"
    return RefineConfig(
        method=method, base=base, env_id=args.env, num_envs=args.envs, total_env_steps=args.steps, seed=seed,
        demos="expert:noise=0" if method in ("residual", "rlpd", "dsrl-na") else "", demo_episodes=args.demos,
        random_steps=args.random_steps, critic_warmup_updates=args.critic_warmup, updates_per_env_step=args.utd,
        eval_every=args.eval_every, eval_episodes=args.eval_episodes, eval_envs=8,
        checkpoint_every=args.steps, run_name=f"{method}-seed{seed}", out_dir=args.out, learner=learner)


def plot(results: dict[str, list[RefineResult]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, runs in results.items():
        for i, r in enumerate(runs):
            xs = [e["env_steps"] for e in r.evals]
            ys = [e["success_rate"] for e in r.evals]
            ax.plot(xs, ys, marker="o", color=f"C{list(results).index(method)}", label=method if i == 0 else None)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI-sized run: 3k steps, small nets, 1 seed")
    p.add_argument("--methods", nargs="+", default=["residual", "rlpd"])
    p.add_argument("--env", default="robolearn/PandaLift-v0")
    p.add_argument("--noise", type=float, default=1.5, help="expert noise of the base")
    p.add_argument("--dsrl-base", default="", help="generative base checkpoint for dsrl / dsrl-na")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--utd", type=float, default=0.5, help="gradient updates per env step")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--demos", type=int, default=20, help="demonstration episodes (clean expert)")
    p.add_argument("--random-steps", type=int, default=2_000)
    p.add_argument("--critic-warmup", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=5_000)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--out", default="runs/bench-refine")
    args = p.parse_args()
    if args.quick:
        args.steps, args.eval_every, args.eval_episodes, args.batch = 3_000, 1_000, 16, 64
        args.random_steps, args.critic_warmup, args.demos, args.utd = 500, 100, 8, 0.25
    if any(m.startswith("dsrl") for m in args.methods) and not args.dsrl_base:
        p.error("dsrl / dsrl-na need --dsrl-base (a generative policy checkpoint)")
    results: dict[str, list[RefineResult]] = {m: [] for m in args.methods}
    for method in args.methods:
        for seed in args.seeds:
            results[method].append(train(config(method, args, seed)))
    out = Path(args.out)
    print(f"\n{args.env}, base expert noise {args.noise}, {args.envs} envs, UTD {args.utd}")
    print(f"{'method':<10}{'seed':>5}{'env steps':>11}{'success':>9}  {'s / 10k steps':>13}{'updates/s':>11}")
    rows = []
    for method, runs in results.items():
        for seed, r in zip(args.seeds, runs, strict=True):
            for e in r.evals:
                print(f"{method:<10}{seed:>5}{e['env_steps']:>11}{e['success_rate']:>9.3f}")
            per_10k = r.wall_s / max(r.env_steps, 1) * 1e4
            print(f"{method:<10}{seed:>5}{'total':>11}{'':>9}  {per_10k:>13.0f}{r.updates_per_s:>11.1f}")
            rows.append({"method": method, "seed": seed, "evals": r.evals, "wall_s": r.wall_s,
                         "updates": r.updates, "updates_per_s": r.updates_per_s})
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    plot(results, out / "refine_sample_efficiency.png")
    print(f"plot: {out / 'refine_sample_efficiency.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
