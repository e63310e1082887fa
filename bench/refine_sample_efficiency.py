"""Sample efficiency of refinement: success rate vs env steps for residual RL, DSRL-SAC, DSRL-NA and RLPD.

The base and the demonstrations are a pipeline run's (default: the ``make demo`` pipeline,
``configs/pipelines/panda_lift.yaml``: a diffusion policy from 30 noisy demonstrations, far from reliable; run
it first). Methods, all with the same env-step budget and the same evaluation (deterministic actor, 32
episodes seeded 10_000 + i, every ``--eval-every`` steps):

(a) ``residual`` (ResFiT, TD3): the pipeline's residual branch settings, demonstrations in the offline
    buffer (RLPD 50/50), relabelled with the base's action;
(b) ``dsrl`` (SAC in noise space): the pipeline's DSRL branch settings;
(c) ``dsrl-na`` (noise aliasing): the same settings; with ``--na-demos`` the demonstrations, cut into
    executed-chunk transitions (:mod:`robolearn.refine.chunk_data`), fill its offline buffer;
(d) ``vgps`` (value-guided policy steering): K = 8 base candidates per chunk (noise scale 0.5, one from
    zero noise), ranked by an IQL-trained chunk critic; the pipeline's ``vgps`` branch settings if it has
    one, else :data:`VGPS_SETTINGS`;
(e) ``rlpd``: SAC from scratch (10-critic ensemble, LayerNorm, the same UTD) with the same demonstrations,
    run to ``--rlpd-steps`` (default 3x the budget) so that a 3x step ratio can be shown or refuted: a method
    that reaches its level at n steps is 3x faster if RLPD needs 3n or more, or never gets there in 3n.

Prints per-method curves (mean and min-max over seeds, and the mean episode length), wall-clock per 10k
env steps and gradient updates/s, and for each method its gain over the best base variant (the better of
the pipeline's random- and zero-noise evaluations of the base) and the env steps it needs to reach 90% and
95% against RLPD's, all measured in this run; writes ``results.json`` and a PNG.

    python bench/refine_sample_efficiency.py --quick                  # minutes: 1 seed, 3k steps
    python bench/refine_sample_efficiency.py --seeds 0 1 2 --jobs 2   # 50k steps, RLPD 150k (about two hours)
    python bench/refine_sample_efficiency.py --residual-scale 0.2     # the README's run
    python bench/refine_sample_efficiency.py --methods residual --set residual.updates_per_env_step=1
    python bench/refine_sample_efficiency.py --methods residual --set residual.params.plan_steps=3
    python bench/refine_sample_efficiency.py --ray auto               # the runs as Ray tasks (robolearn[dist])
    python bench/refine_sample_efficiency.py --ray HEAD:6379          # ... on a cluster: one CPU per run

With ``--ray`` each (method, seed) run is a Ray task (one CPU, one torch thread) instead of a ``--jobs`` pool
process; the rows and the report are the same, and ``--report-only`` rebuilds them from the finished runs'
checkpoints under ``--out`` either way (with ``--ray`` on a cluster, ``--out`` must be a directory every node
shares, at the same path).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from robolearn.dist.cluster import map_jobs
from robolearn.refine.methods import METHODS

VGPS_SETTINGS: dict[str, Any] = {
    "num_envs": 8, "updates_per_env_step": 2.0, "random_steps": 1000, "critic_warmup_updates": 2000,
    "critic_warmup_burst": True, "params": {"candidates": 8, "noise_scale": 0.5},
    "learner": {"algo": "td3", "hidden": [256, 256]},
}
"""V-GPS's settings when the pipeline has no ``vgps`` branch (updates per chunk transition: 2)."""


def method_config(pipeline: Any, method: str, args: argparse.Namespace, seed: int) -> Any:
    """The :class:`RefineConfig` of ``method`` on the pipeline's task, base and demonstrations."""
    from robolearn.pipeline.branches import refine_config
    from robolearn.pipeline.config import RefineStageConfig

    branches = {b.method: b for b in pipeline.refine}
    source = method if method in branches or method == "vgps" else "residual" if method in ("residual", "rlpd") \
        else "dsrl"
    if source not in branches and source != "vgps":
        raise SystemExit(f"{args.pipeline} has no '{source}' refinement branch to take the settings from")
    settings = copy.deepcopy(branches[source].settings if source in branches else VGPS_SETTINGS)
    if METHODS[method].params_type is not METHODS[source].params_type:  # the source's params are not this one's
        settings.pop("params", None)
    steps = args.rlpd_steps if method == "rlpd" else args.steps
    # the bench's evaluations measure the curve (they are not part of the method): no budget on them
    settings.update(total_env_steps=steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                    checkpoint_every=steps, select_best=False, run_name=f"{method}-seed{seed}",
                    out_dir=args.out, eval_budget=0)
    if method == "residual" and args.residual_scale:
        settings["params"] = {**settings.get("params", {}), "scale": args.residual_scale}
    for key, value in method_overrides(args.set, method).items():
        *parents, leaf = key.split(".")
        node = settings
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if method == "rlpd":  # RLPD: SAC from scratch, LayerNorm, a 10-critic ensemble, the same UTD and data
        settings["learner"] = {**settings.get("learner", {}), "algo": "sac", "num_critics": 10,
                               "actor_lr": 3e-4, "zero_init_actor": False}
    if pipeline.trains_base and (method == "rlpd" or (method == "dsrl-na" and args.na_demos)):
        settings["demos"] = str(pipeline.layout.data)
    if args.quick:
        settings.update(random_steps=500, critic_warmup_updates=100, eval_envs=4)
        settings["learner"] = {**settings.get("learner", {}), "hidden": [64, 64], "batch_size": 64}
    cfg = refine_config(pipeline, RefineStageConfig(method=method, settings=settings))
    cfg.seed = seed
    return cfg


def method_overrides(items: list[str], method: str) -> dict[str, Any]:
    """``{dotted key: value}`` of the ``--set METHOD.key=value`` items that name ``method`` (values parsed as
    YAML: ``residual.learner.exploration_noise=0.05``, ``rlpd.n_step=5``)."""
    import yaml

    out = {}
    for item in items:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not key or name not in METHODS:
            raise SystemExit(f"--set {item!r}: expected METHOD.key=value with METHOD one of {', '.join(METHODS)}")
        if name == method:
            out[key] = yaml.safe_load(value)
    return out


def run_one(job: tuple[str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """Train one (method, seed) in this worker process; returns its curve and throughput."""
    import torch

    from robolearn.core.config import load_config
    from robolearn.pipeline.config import PipelineConfig
    from robolearn.refine.loop import train
    from robolearn.wiring import refine_sources

    torch.set_num_threads(1)
    pipeline_path, method, seed, arg_dict = job
    args = argparse.Namespace(**arg_dict)
    pipeline = load_config(PipelineConfig, Path(pipeline_path), args.pipeline_set)
    cfg = method_config(pipeline, method, args, seed)
    result = train(cfg, refine_sources(cfg), run_dir=Path(args.out) / f"{method}-seed{seed}", progress=False)
    print(f"  {method} seed {seed}: final success {result.evals[-1]['success_rate']:.2f} "
          f"({result.wall_s:.0f} s)", flush=True)
    return {"method": method, "seed": seed, "evals": result.evals, "wall_s": result.wall_s,
            "env_steps": result.env_steps, "updates": result.updates, "updates_per_s": result.updates_per_s}




def rows_from_checkpoints(out: Path) -> list[dict[str, Any]]:
    """The rows of the finished runs under ``out`` (``<method>-seed<k>/``), rebuilt from their last checkpoint:
    what ``run_one`` returns, for runs of a pool that was stopped or split over several invocations."""
    import yaml

    from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint

    rows = []
    for run in sorted(out.glob("*-seed*")):
        method, _, seed = run.name.rpartition("-seed")
        ckpt = latest_checkpoint(run)
        if method not in METHODS or ckpt is None:
            continue
        state = load_checkpoint(ckpt, {})
        counters, total = state["counters"], yaml.safe_load((run / "config.yaml").read_text())["total_env_steps"]
        if counters["env_steps"] < total:
            print(f"  {run.name}: stopped at {counters['env_steps']} of {total} env steps, left out", flush=True)
            continue
        updates = state["evals"][-1]["updates"]
        rows.append({"method": method, "seed": int(seed), "evals": state["evals"], "wall_s": counters["wall_s"],
                     "env_steps": counters["env_steps"], "updates": updates,
                     "updates_per_s": updates / state["update_s"] if state["update_s"] else 0.0})
    return rows


def curves(rows: list[dict[str, Any]], method: str) -> tuple[np.ndarray, np.ndarray]:
    """Env steps ``(K,)`` and success ``(S, K)`` of one method's seeds (evaluations aligned by index)."""
    runs = [r for r in rows if r["method"] == method]
    k = min(len(r["evals"]) for r in runs)
    steps = np.array([np.mean([r["evals"][i]["env_steps"] for r in runs]) for i in range(k)])
    return steps, np.array([[r["evals"][i]["success_rate"] for i in range(k)] for r in runs])


def mean_length(rows: list[dict[str, Any]], method: str, index: int) -> float | None:
    """Seed-mean episode length (wrapper steps) of one method's ``index``-th evaluation (None: not recorded,
    as in runs made before evaluations recorded it)."""
    values = [r["evals"][index].get("mean_length") for r in rows if r["method"] == method]
    return None if any(v is None for v in values) else float(np.mean(values))


def steps_to(rows: list[dict[str, Any]], method: str, level: float) -> float | None:
    """First evaluation's env steps at which the seed-mean success reaches ``level`` (None: never)."""
    steps, success = curves(rows, method)
    hit = np.nonzero(success.mean(0) >= level - 1e-9)[0]
    return float(steps[hit[0]]) if len(hit) else None


def plot(rows: list[dict[str, Any]], methods: list[str], path: Path, title: str, budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, method in enumerate(methods):
        steps, success = curves(rows, method)
        ax.plot(steps, success.mean(0), marker="o", color=f"C{i}", label=f"{method} ({len(success)} seeds)")
        ax.fill_between(steps, success.min(0), success.max(0), color=f"C{i}", alpha=0.15)
    ax.axvline(budget, color="0.5", linestyle="--", linewidth=1, label="shared budget")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate (mean, min-max over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def ratio_text(mine: float | None, rlpd: float | None, rlpd_budget: int) -> str:
    """The step ratio to RLPD, and whether it meets the 3x target (RLPD's budget bounds it when it never got there)."""
    if mine is None:
        return "-"
    if mine == 0:  # at the level before any env step (a DSRL actor starts at zero noise)
        return "before training; RLPD " + ("also: NOT MET" if rlpd == 0 else "later: MET")
    if rlpd is not None:
        return f"{rlpd / mine:.1f}x: {'MET' if rlpd >= 3 * mine else 'NOT MET'}"
    bound = rlpd_budget / mine
    return f"RLPD never reached it in {rlpd_budget} steps, > {bound:.1f}x: {'MET' if bound >= 3 else 'unknown'}"


LEVELS = (0.90, 0.95)
"""Success levels whose env-step cost each method is compared on (issue 23: 95% in <= 20k steps, 3x RLPD)."""


def best_base(variants: dict[str, float]) -> tuple[str, float]:
    """The best of the base's evaluated variants (``{name: success}``, NaN when not evaluated)."""
    known = {k: v for k, v in variants.items() if not np.isnan(v)}
    return max(known.items(), key=lambda kv: kv[1]) if known else ("base", float("nan"))


def _steps(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f} steps"


def report(rows: list[dict[str, Any]], methods: list[str], variants: dict[str, float], rlpd_budget: int) -> None:
    """Curves, cost per 10k env steps, and each method against RLPD and the best base variant."""
    print(f"\n{'method':<10}{'env steps':>10}{'success mean':>14}{'min':>7}{'max':>7}{'length':>8}")
    for method in methods:
        steps, success = curves(rows, method)
        for i, (s, col) in enumerate(zip(steps, success.T, strict=True)):
            length = mean_length(rows, method, i)
            print(f"{method:<10}{s:>10.0f}{col.mean():>14.3f}{col.min():>7.2f}{col.max():>7.2f}"
                  f"{'-' if length is None else f'{length:.1f}':>8}")
    print(f"\n{'method':<10}{'s / 10k env steps':>18}{'updates/s':>11}")
    for method in methods:
        runs = [r for r in rows if r["method"] == method]
        per_10k = np.mean([r["wall_s"] / max(r["env_steps"], 1) * 1e4 for r in runs])
        print(f"{method:<10}{per_10k:>18.0f}{np.mean([r['updates_per_s'] for r in runs]):>11.1f}")
    name, best = best_base(variants)
    print("\nbase variants (pipeline evaluations, 100 episodes): "
          + ", ".join(f"{k} {v:.2f}" for k, v in variants.items() if not np.isnan(v))
          + f"; best: {name} ({best:.2f})")
    for method in (m for m in methods if m != "rlpd"):
        _, success = curves(rows, method)
        final, peak = success.mean(0)[-1], success.mean(0).max()
        print(f"{method:<10} final {final:.2f}, best evaluation {peak:.2f}: "
              f"{final - best:+.2f} over the best base variant ({name})")
        for level in LEVELS:
            mine = steps_to(rows, method, level)
            rlpd = steps_to(rows, "rlpd", level) if "rlpd" in methods else None
            ratio = ratio_text(mine, rlpd, rlpd_budget) if "rlpd" in methods else "no RLPD run"
            print(f"{'':<10} reaches {level:.2f}: {_steps(mine)}; RLPD: {_steps(rlpd)} ({ratio})")


PRESETS = Path(__file__).resolve().parents[1] / "configs" / "pipelines"
"""The pipeline presets ``--task`` chooses from."""


def preset_for_task(env_id: str, presets: Path = PRESETS) -> Path:
    """The pipeline preset in ``presets`` whose task is ``env_id`` (one line naming the tasks that have one)."""
    from robolearn.core.config import load_config
    from robolearn.pipeline.config import PipelineConfig

    found = {load_config(PipelineConfig, path).env_id: path for path in sorted(presets.glob("*.yaml"))}
    if env_id not in found:
        raise ValueError(f"--task {env_id}: no pipeline preset in {presets} runs it; choose from {', '.join(found)}")
    return found[env_id]


def parse_args() -> argparse.Namespace:
    """The command line, with the ``--quick`` settings applied and checked."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="configs/pipelines/panda_lift.yaml",
                   help="pipeline preset whose run directory holds the base (base/) and demonstrations (data/)")
    p.add_argument("--task", default="",
                   help="a task id: the pipeline preset in configs/pipelines/ on that task (instead of --pipeline)")
    p.add_argument("--pipeline-set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="dotted overrides of the pipeline preset, as `robolearn pipeline` takes them: "
                        "run_dir=runs/pipeline-b5k reads the base and data of a pipeline run made with them")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (--quick: 0)")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--rlpd-steps", type=int, default=0, help="RLPD's env steps (0: 3x --steps)")
    p.add_argument("--eval-every", type=int, default=5_000)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run the jobs as Ray tasks instead of a --jobs pool (pip install robolearn[dist]): 'auto' "
                        "joins the cluster `ray start` runs here or starts one on this machine; ADDRESS joins that")
    p.add_argument("--na-demos", action="store_true", help="dsrl-na: the demonstrations in its offline buffer")
    p.add_argument("--residual-scale", type=float, default=0.0,
                   help="residual: largest correction, fraction of the action range (0: the pipeline's)")
    p.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                   help="a refinement setting of one method, over the pipeline's: residual.updates_per_env_step=1")
    p.add_argument("--quick", action="store_true", help="1 seed (unless --seeds), 3k steps, small networks")
    p.add_argument("--out", default="runs/bench-refine")
    p.add_argument("--report-only", action="store_true",
                   help="no training: report and plot the finished runs under --out and --merge again")
    p.add_argument("--merge", nargs="*", default=[], help="--report-only: also the runs under these directories")
    args = p.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    if args.quick:
        args.steps, args.eval_every, args.eval_episodes = 3_000, 1_000, 8
        args.rlpd_steps = args.rlpd_steps or args.steps
    args.rlpd_steps = args.rlpd_steps or 3 * args.steps
    if args.task:
        try:
            args.pipeline = str(preset_for_task(args.task))
        except ValueError as err:
            p.error(str(err))
    for method in METHODS:
        method_overrides(args.set, method)  # a malformed --set fails here, not in a worker hours later
    if args.rlpd_steps < args.steps:
        p.error(f"--rlpd-steps ({args.rlpd_steps}) must be at least --steps ({args.steps}): the methods share a budget")
    if args.ray and not args.report_only:
        from robolearn.dist.cluster import require_ray

        try:
            require_ray()
        except ImportError as err:
            p.error(str(err))
    return args


def main() -> int:
    args = parse_args()
    from robolearn.core.config import load_config
    from robolearn.pipeline.config import PipelineConfig, base_spec

    pipeline = load_config(PipelineConfig, Path(args.pipeline), args.pipeline_set)
    layout = pipeline.layout
    if pipeline.trains_base and (not layout.base.is_dir() or not layout.data.is_dir()):
        raise SystemExit(f"{layout.root} has no base/ and data/: run `robolearn pipeline {args.pipeline} "
                         f"{' '.join(args.pipeline_set)}` (or make demo) first")
    variants = {}
    for variant in ("base", "base (zero noise)"):  # a diffusion base's random- and zero-noise sampling
        record = layout.eval_record(variant, "nominal")
        variants[variant] = json.loads(record.read_text())["success_rate"] if record.exists() else float("nan")
    base_success = variants["base"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cost = {"rlpd": 0, "dsrl-na": 1, "vgps": 1, "residual": 2, "dsrl": 3}  # longest first: the pool ends together
    order = sorted(args.methods, key=lambda m: cost.get(m, 1))
    if args.report_only:
        rows = [row for d in [out, *map(Path, args.merge)] for row in rows_from_checkpoints(d)]
        (out / "results.json").write_text(json.dumps(rows, indent=1))
        args.methods = [m for m in args.methods if any(r["method"] == m for r in rows)]
        args.rlpd_steps = max([r["env_steps"] for r in rows if r["method"] == "rlpd"], default=args.rlpd_steps)
    else:
        jobs = [(args.pipeline, m, s, vars(args)) for m in order for s in args.seeds]
        where = f"as Ray tasks ({args.ray})" if args.ray else f"{args.jobs} at a time"
        print(f"{len(jobs)} runs of {args.steps} env steps (RLPD {args.rlpd_steps}), {where}; "
              f"base {base_spec(pipeline)}", flush=True)
        rows = map_jobs(run_one, jobs, args.jobs, args.ray)
        (out / "results.json").write_text(json.dumps(rows, indent=1))
    report(rows, args.methods, variants, args.rlpd_steps)
    title = f"{pipeline.env_id}: base {base_spec(pipeline)} ({base_success:.0%})"
    plot(rows, args.methods, out / "refine_sample_efficiency.png", title, args.steps)
    print(f"plot: {out / 'refine_sample_efficiency.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
