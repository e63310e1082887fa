"""HIL benchmark: success and cumulative interventions vs env steps for HIL-SERL, RLIF and HG-DAgger.

On PandaPegInsert the base is the noisy scripted expert (``--base-noise``; its success alone is measured in
every run) under a residual actor. Two simulated people watch it, both the scripted expert executing with
noise: a good one (``--human-noise``) for HIL-SERL and a sub-optimal one (``--sub-noise``, itself well
below 100% alone, and quicker to step in: ``--sub-threshold``) for RLIF. Each demonstrates the first
``--demos`` episodes. HG-DAgger, the baseline, runs once with each person (``hg-dagger`` and
``hg-dagger-sub``), so every method is compared with behaviour cloning of the same person's corrections.
The policy alone (deterministic actor, no person) is evaluated every ``--eval-every`` env steps; training
success and intervention figures come from the episodes with the person.

Targets (issue 7), checked at the end: HIL-SERL >= 95% success; the intervention rate falls over training;
RLIF ends above its sub-optimal person's own success rate; HIL-SERL and RLIF beat HG-DAgger (with the same
person) at the same number of interventions (policy-alone success interpolated at the smaller of the two
runs' final intervention-step counts). Writes ``results.json``, ``table.md`` and (with matplotlib)
``curves.png`` under ``--out``.

    python bench/hil_interventions.py --quick        # 1 seed, 3k env steps per run, small networks
    python bench/hil_interventions.py                # 3 seeds, 45k env steps per run, 2 runs at a time
    python bench/hil_interventions.py --ray auto     # the runs as Ray tasks, one CPU each (robolearn[dist])
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.dist.cluster import map_jobs

ENV = "robolearn/PandaPegInsert-v0"
VARIANTS = {"hil-serl": ("hil-serl", "good"), "rlif": ("rlif", "sub"), "hg-dagger": ("hg-dagger", "good"),
            "hg-dagger-sub": ("hg-dagger", "sub")}
"""Bench variant -> (HIL mode, which simulated person)."""
BASELINE = {"hil-serl": "hg-dagger", "rlif": "hg-dagger-sub"}
"""Each method and the HG-DAgger run with the same person."""


def policy_success(spec: str, episodes: int, seed: int) -> float:
    """Success rate of a named policy run alone on ENV (``episodes`` seeded episodes)."""
    from robolearn.evaluate import evaluate
    from robolearn.policy_factory import load_policy

    return evaluate(load_policy(spec, ENV, seed=seed), ENV, episodes, seed=seed, progress=False
                    ).scalars()["success_rate"]


def make_config(args: argparse.Namespace, variant: str, seed: int) -> Any:
    """The :class:`HILConfig` of one bench variant and seed."""
    from robolearn.hil.config import HILConfig
    from robolearn.hil.sim_human import SimHumanConfig
    from robolearn.refine.methods import ResidualParams
    from robolearn.rl.learner import LearnerConfig

    mode, person = VARIANTS[variant]
    noise, threshold = (args.human_noise, args.threshold) if person == "good" else (args.sub_noise, args.sub_threshold)
    hidden = [128, 128] if args.quick else [256, 256]
    return HILConfig(
        mode=mode, device="sim-human", env_id=ENV, base=f"expert:noise={args.base_noise}", num_envs=args.envs,
        total_env_steps=args.steps, seed=seed, residual=ResidualParams(scale=args.scale), updates_per_env_step=args.utd,
        critic_warmup_updates=args.critic_warmup, min_buffer=256, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, dataset=False, checkpoint_every=10**9,
        sim_human=SimHumanConfig(noise=noise, action_threshold=threshold, state_threshold=0.03,
                                 stall_steps=args.stall, duration=args.duration, delay=args.delay,
                                 demo_episodes=args.demos, seed=seed),
        learner=LearnerConfig(algo="td3", hidden=hidden, batch_size=128 if args.quick else 256, drq_pad=0,
                              actor_lr=1e-4, actor_delay=2, exploration_noise=0.1, bc_weight=args.bc_weight,
                              actor_l2=args.rlif_l2 if mode == "rlif" else 0.0),
    )


def run_one(job: tuple[str, int, dict[str, Any]]) -> dict[str, Any]:
    """Train one (variant, seed) in this worker process; returns its :class:`HILResult` as a dict."""
    import torch

    from robolearn.hil.run import run_hil
    from robolearn.wiring import hil_sources

    torch.set_num_threads(1)  # small networks: one thread is fastest and leaves the cores to MuJoCo
    variant, seed, arg_dict = job
    args = argparse.Namespace(**arg_dict)
    run_dir = Path(args.out) / f"{variant}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = make_config(args, variant, seed)
    r = run_hil(cfg, hil_sources(cfg), run_dir, log_every=200)
    print(f"  {variant} seed {seed}: eval {[round(e['success_rate'], 2) for e in r.evals]} at "
          f"{[e['env_steps'] for e in r.evals]} steps; {r.takeovers} takeovers, {r.intervention_steps} human steps, "
          f"{r.updates} updates, {r.wall_s:.0f} s", flush=True)
    return {"variant": variant, "seed": seed, **vars(r)}




def interventions_at(run: dict[str, Any], env_steps: float) -> float:
    """Cumulative intervention steps of ``run`` at ``env_steps`` (from its logged curve)."""
    xs = [c["env_steps"] for c in run["curve"]]
    return float(np.interp(env_steps, xs, [c["intervention_steps"] for c in run["curve"]]))


def success_at_interventions(run: dict[str, Any], k: float) -> float:
    """Policy-alone success of ``run`` interpolated at ``k`` cumulative intervention steps."""
    xs = [interventions_at(run, e["env_steps"]) for e in run["evals"]]
    return float(np.interp(k, xs, [e["success_rate"] for e in run["evals"]]))


def rate_between(run: dict[str, Any], lo: float, hi: float) -> float:
    """Share of training steps under human control between env steps ``lo`` and ``hi``."""
    steps, human = interventions_at(run, hi) - interventions_at(run, lo), hi - lo
    return steps / human if human > 0 else float("nan")


def demos_end(run: dict[str, Any], demo_episodes: int) -> float:
    """Env steps by which the person's ``demo_episodes`` initial demonstrations had ended."""
    return next((c["env_steps"] for c in run["curve"] if c["episodes"] >= demo_episodes), 0.0)


def summarize(variant: str, runs: list[dict[str, Any]], demo_episodes: int) -> dict[str, Any]:
    """Seed means of one variant. Intervention rates are training-step shares under human control, from the
    end of the initial demonstrations to a third of the run, and over the last third."""
    def mean(f: Any) -> float:
        return float(np.mean([f(r) for r in runs]))

    return {
        "variant": variant, "person": VARIANTS[variant][1], "seeds": len(runs),
        "success_start": mean(lambda r: r["evals"][0]["success_rate"]),
        "success_end": mean(lambda r: r["evals"][-1]["success_rate"]),
        "success_end_min": float(min(r["evals"][-1]["success_rate"] for r in runs)),
        "train_success_end": mean(lambda r: r["curve"][-1]["success_rate"]),
        "takeovers": mean(lambda r: r["takeovers"]), "intervention_steps": mean(lambda r: r["intervention_steps"]),
        "int_rate_first_third": mean(lambda r: rate_between(r, demos_end(r, demo_episodes), r["env_steps"] / 3)),
        "int_rate_last_third": mean(lambda r: rate_between(r, 2 * r["env_steps"] / 3, r["env_steps"])),
        "updates": mean(lambda r: r["updates"]), "s_per_10k": mean(lambda r: r["wall_s"] / r["env_steps"] * 1e4),
    }


def check_targets(results: dict[str, list[dict[str, Any]]], rows: dict[str, dict[str, Any]],
                  refs: dict[str, float]) -> list[str]:
    """One line per target of issue 7 that this run can judge: met or not, with the figures."""
    def verdict(ok: bool) -> str:
        return "MET    " if ok else "NOT MET"

    lines = []
    if "hil-serl" in rows:
        s = rows["hil-serl"]["success_end"]
        lines.append(f"{verdict(s >= 0.95)} HIL-SERL >= 95% success: {s:.3f} (seed mean; lowest seed "
                     f"{rows['hil-serl']['success_end_min']:.3f})")
    for v in ("hil-serl", "rlif"):
        if v in rows:
            a, b = rows[v]["int_rate_first_third"], rows[v]["int_rate_last_third"]
            lines.append(f"{verdict(b < a)} {v} intervention rate falls: {a:.3f} in the first third of training "
                         f"(after the initial demonstrations), {b:.3f} in the last")
    if "rlif" in rows:
        s, e = rows["rlif"]["success_end"], refs["sub_person_alone"]
        lines.append(f"{verdict(s > e)} RLIF above its sub-optimal person alone: {s:.3f} vs {e:.3f}")
    for v, base in BASELINE.items():
        if v not in results or base not in results:
            continue
        mine, theirs = [], []
        for a, b in zip(sorted(results[v], key=lambda r: r["seed"]), sorted(results[base], key=lambda r: r["seed"]),
                        strict=True):
            k = min(a["intervention_steps"], b["intervention_steps"])
            mine.append(success_at_interventions(a, k))
            theirs.append(success_at_interventions(b, k))
        lines.append(f"{verdict(np.mean(mine) > np.mean(theirs))} {v} beats {base} at the same intervention steps: "
                     f"{np.mean(mine):.3f} vs {np.mean(theirs):.3f} (seed mean, each seed at the smaller count)")
    return lines


def plot(results: dict[str, list[dict[str, Any]]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (variant, runs) in enumerate(results.items()):
        for i, r in enumerate(runs):
            label = variant if i == 0 else None
            a.plot([e["env_steps"] for e in r["evals"]], [e["success_rate"] for e in r["evals"]], marker="o",
                   color=f"C{k}", alpha=0.8, label=label)
            b.plot([c["env_steps"] for c in r["curve"]], [c["intervention_steps"] for c in r["curve"]],
                   color=f"C{k}", alpha=0.8, label=label)
    a.set(xlabel="environment steps", ylabel="success rate (policy alone)", ylim=(-0.02, 1.02))
    b.set(xlabel="environment steps", ylabel="cumulative intervention steps")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def parse_args() -> argparse.Namespace:
    """The command line, with the ``--quick`` and default settings applied."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 3k env steps per run, small networks")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--steps", type=int, default=None, help="env steps per run (default 3k quick, 45k full)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run the jobs as Ray tasks instead of a --jobs pool (pip install robolearn[dist]): 'auto' "
                        "joins the cluster `ray start` runs here or starts one on this machine; ADDRESS joins that")
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--base-noise", type=float, default=0.3, help="expert noise of the base")
    p.add_argument("--human-noise", type=float, default=0.1, help="expert noise of the good simulated person")
    p.add_argument("--sub-noise", type=float, default=0.28, help="expert noise of the sub-optimal person (RLIF)")
    p.add_argument("--threshold", type=float, default=0.35, help="good person's action-deviation threshold")
    p.add_argument("--sub-threshold", type=float, default=0.2,
                   help="sub-optimal person's action-deviation threshold (quicker to step in, clumsier hands)")
    p.add_argument("--stall", type=int, default=60, help="sim human takes over (to the end) after this many steps")
    p.add_argument("--duration", type=int, default=20, help="steps of a takeover for a deviation")
    p.add_argument("--delay", type=int, default=1)
    p.add_argument("--scale", type=float, default=0.25, help="residual scale")
    p.add_argument("--utd", type=float, default=1.0, help="updates per env step")
    p.add_argument("--critic-warmup", type=int, default=1000, help="critic-only updates before the actor learns")
    p.add_argument("--demos", type=int, default=20, help="episodes the person demonstrates at the start")
    p.add_argument("--bc-weight", type=float, default=1.0, help="BC on the demonstration (intervention) rows")
    p.add_argument("--rlif-l2", type=float, default=0.3,
                   help="RLIF: penalty on the residual (actor_l2); with no task reward its critic is flat at first")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--ref-episodes", type=int, default=100, help="episodes of each reference policy alone")
    p.add_argument("--out", default="runs/bench-hil")
    args = p.parse_args()
    if args.ray:
        from robolearn.dist.cluster import require_ray

        try:
            require_ray()
        except ImportError as err:
            p.error(str(err))
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    args.steps = args.steps or (3_000 if args.quick else 45_000)
    args.eval_every = args.eval_every or args.steps // (3 if args.quick else 6)
    if args.quick:
        args.eval_episodes, args.ref_episodes, args.critic_warmup, args.demos = 8, 16, 100, 4
    return args


def main() -> int:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    refs = {"base": policy_success(f"expert:noise={args.base_noise}", args.ref_episodes, 999),
            "good_person_alone": policy_success(f"expert:noise={args.human_noise}", args.ref_episodes, 999),
            "sub_person_alone": policy_success(f"expert:noise={args.sub_noise}", args.ref_episodes, 999)}
    print(f"alone, {args.ref_episodes} episodes: base (expert:noise={args.base_noise}) {refs['base']:.2f}; good "
          f"person (noise {args.human_noise}) {refs['good_person_alone']:.2f}; sub-optimal person (noise "
          f"{args.sub_noise}) {refs['sub_person_alone']:.2f}", flush=True)
    jobs = [(v, s, vars(args)) for v in args.variants for s in args.seeds]
    print(f"{len(jobs)} runs of {args.steps} env steps, " + (f"as Ray tasks ({args.ray})" if args.ray else
                                                            f"{args.jobs} at a time"), flush=True)
    done = map_jobs(run_one, jobs, args.jobs, args.ray)
    results: dict[str, list[dict[str, Any]]] = {}
    for r in done:
        results.setdefault(r["variant"], []).append(r)
    rows = {v: summarize(v, runs, args.demos) for v, runs in results.items()}
    cols = list(next(iter(rows.values())))
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |"
              for r in rows.values()]
    targets = check_targets(results, rows, refs)
    (out / "table.md").write_text("\n".join(table + [""] + targets) + "\n")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "reference": refs, "summary": rows,
                                                  "targets": targets, "runs": results}, indent=1, default=float))
    plotted = plot(results, out / "curves.png")
    print("\n".join(table + [""] + targets))
    print(f"total {time.perf_counter() - t0:.0f} s; {out}/results.json" + (f", {out}/curves.png" if plotted else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
