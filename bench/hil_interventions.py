"""HIL benchmark: success and cumulative interventions vs env steps for HIL-SERL, RLIF and HG-DAgger.

On PandaPegInsert with a noisy scripted expert as the base (``expert:noise=0.35``: about 35% success,
measured below in every run) and a sub-optimal simulated human (the expert with ``--human-noise``), each
mode runs :func:`robolearn.hil.actor_learner.run_hil` in-process. The policy alone (deterministic actor,
no person) is evaluated every ``--eval-every`` env steps; training success and intervention figures come
from the episodes with the person. Writes ``results.json``, ``table.md`` and (with matplotlib)
``curves.png`` under ``--out``.

    python bench/hil_interventions.py --quick        # 1 seed, 3k env steps per mode, small networks
    python bench/hil_interventions.py                # 3 seeds, 30k env steps per mode
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from robolearn.hil.actor_learner import HILResult, run_hil
from robolearn.hil.config import HILConfig
from robolearn.hil.sim_human import SimHumanConfig
from robolearn.rl.learner import LearnerConfig

ENV = "robolearn/PandaPegInsert-v0"
MODES = ("hil-serl", "rlif", "hg-dagger")


def policy_success(spec: str, episodes: int, seed: int) -> float:
    """Success rate of a named policy run alone on ENV (``episodes`` seeded episodes, 8 envs)."""
    from robolearn.evaluate import evaluate
    from robolearn.policy_factory import load_policy

    return evaluate(load_policy(spec, ENV, seed=seed), ENV, episodes, seed=seed, progress=False
                    ).scalars()["success_rate"]


def make_config(args: argparse.Namespace, mode: str, seed: int) -> HILConfig:
    hidden = [128, 128] if args.quick else [256, 256]
    return HILConfig(
        mode=mode, device="sim-human", env_id=ENV, base=f"expert:noise={args.base_noise}", num_envs=args.envs,
        total_env_steps=args.steps, seed=seed, residual_scale=args.scale, updates_per_env_step=args.utd,
        critic_warmup_updates=args.critic_warmup, min_buffer=256, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,        dataset=False, checkpoint_every=10**9,
        sim_human=SimHumanConfig(noise=args.human_noise, action_threshold=args.threshold, state_threshold=0.03,
                                 stall_steps=args.stall, duration=args.duration, delay=args.delay, seed=seed),
        learner=LearnerConfig(algo="td3", hidden=hidden, batch_size=128 if args.quick else 256, drq_pad=0,
                              exploration_noise=0.1, actor_l2=args.actor_l2),
    )


def summarize(mode: str, runs: list[HILResult]) -> dict[str, float]:
    def mean(f) -> float:
        return float(np.mean([f(r) for r in runs]))

    def rate_in(r: HILResult, lo: float, hi: float) -> float:
        rows = [c for c in r.curve if lo <= c["env_steps"] < hi]
        return rows[-1]["intervention_rate"] if rows else float("nan")

    return {
        "mode": mode, "seeds": len(runs),
        "eval_success_start": mean(lambda r: r.evals[0]["success_rate"]),
        "eval_success_end": mean(lambda r: r.evals[-1]["success_rate"]),
        "eval_success_best": mean(lambda r: max(e["success_rate"] for e in r.evals)),
        "train_success_end": mean(lambda r: r.curve[-1]["success_rate"]),
        "takeovers": mean(lambda r: r.takeovers), "intervention_steps": mean(lambda r: r.intervention_steps),
        "intervention_rate_first_third": mean(lambda r: rate_in(r, 0, r.env_steps / 3 + 1)),
        "intervention_rate_end": mean(lambda r: r.curve[-1]["intervention_rate"]),
        "updates": mean(lambda r: r.updates), "wall_s": mean(lambda r: r.wall_s),
    }


def plot(results: dict[str, list[HILResult]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for k, (mode, runs) in enumerate(results.items()):
        for i, r in enumerate(runs):
            a.plot([e["env_steps"] for e in r.evals], [e["success_rate"] for e in r.evals], marker="o",
                   color=f"C{k}", label=mode if i == 0 else None)
            b.plot([c["env_steps"] for c in r.curve], [c["takeovers"] for c in r.curve], color=f"C{k}",
                   label=mode if i == 0 else None)
    a.set(xlabel="environment steps", ylabel="success rate (policy alone)", ylim=(-0.02, 1.02))
    b.set(xlabel="environment steps", ylabel="cumulative interventions (takeovers)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 3k env steps per mode, small networks")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--steps", type=int, default=None, help="env steps per run (default 3k quick, 30k full)")
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--base-noise", type=float, default=0.35, help="expert noise of the base (about 35%% success)")
    p.add_argument("--human-noise", type=float, default=0.3, help="expert noise of the simulated human")
    p.add_argument("--threshold", type=float, default=0.35, help="sim human action-deviation threshold")
    p.add_argument("--stall", type=int, default=60, help="sim human takes over after this many steps")
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--delay", type=int, default=1)
    p.add_argument("--scale", type=float, default=0.25, help="residual scale")
    p.add_argument("--utd", type=float, default=0.5)
    p.add_argument("--critic-warmup", type=int, default=100, help="critic-only updates before the actor learns")
    p.add_argument("--actor-l2", type=float, default=0.0, help="TD3+BC-style penalty on the residual (0: off)")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--eval-episodes", type=int, default=16)
    p.add_argument("--out", default="runs/bench-hil")
    args = p.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    args.steps = args.steps or (3_000 if args.quick else 30_000)
    args.eval_every = args.eval_every or args.steps // 3
    torch.set_num_threads(1)  # small networks: one thread is fastest and leaves the cores to MuJoCo
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    refs = {"base": policy_success(f"expert:noise={args.base_noise}", 48, 999),
            "sim_human_alone": policy_success(f"expert:noise={args.human_noise}", 48, 999)}
    print(f"base expert:noise={args.base_noise} alone: {refs['base']:.2f} success; simulated human "
          f"(expert:noise={args.human_noise}) alone: {refs['sim_human_alone']:.2f} (48 episodes each)", flush=True)
    results: dict[str, list[HILResult]] = {}
    for mode in args.modes:
        for seed in args.seeds:
            run_dir = out / f"{mode}-seed{seed}"
            shutil.rmtree(run_dir, ignore_errors=True)
            r = run_hil(make_config(args, mode, seed), run_dir, log_every=100)
            results.setdefault(mode, []).append(r)
            print(f"{mode} seed {seed}: eval {[round(e['success_rate'], 2) for e in r.evals]} at "
                  f"{[e['env_steps'] for e in r.evals]} steps; {r.takeovers} takeovers, {r.intervention_steps} "
                  f"human steps, {r.updates} updates, {r.wall_s:.0f} s", flush=True)
    rows = [summarize(m, runs) for m, runs in results.items()]
    cols = list(rows[0])
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |"
              for r in rows]
    (out / "table.md").write_text("\n".join(table) + "\n")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "reference": refs, "summary": rows,
                                                  "runs": {m: [vars(r) for r in rs] for m, rs in results.items()}},
                                                 indent=1, default=float))
    plotted = plot(results, out / "curves.png")
    print("\n".join(table))
    print(f"total {time.perf_counter() - t0:.0f} s; {out}/results.json" + (f", {out}/curves.png" if plotted else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
