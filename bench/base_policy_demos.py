"""Success of the base policies vs number of demonstrations, end to end on this machine.

For each task (PandaLift, PandaPegInsert): collect 100 noisy scripted demonstrations once (fixed noise
and seed per task), then for each method (BC, diffusion) and each demonstration count (10, 30, 100,
the first N episodes of that dataset): train from the method's preset, evaluate in sim (episode i
resets with seed 10000 + i), and print a table of success with 95% Wilson intervals and the training
wall-clock. Each cell runs in its own process (``--jobs`` at a time, one torch thread each; or as a Ray task with
``--ray auto|ADDRESS``, ``robolearn[dist]``) and writes
``<out>/<task>_<method>_<N>/result.json``; cells with a result are skipped, so an interrupted study
resumes where it stopped and a partial one is finished by running the same command again.

    python bench/base_policy_demos.py                      # the full study (12 cells, 100 episodes each)
    python bench/base_policy_demos.py --quick              # a smoke run: 10 demos, 200 steps, 10 episodes
    python bench/base_policy_demos.py --tasks lift --methods diffusion --demos 30 --episodes 50

Presets: ``configs/bc/panda_<task>_bc.yaml`` and ``configs/bc/panda_<task>_diffusion_fast.yaml``
(``--diffusion-preset diffusion`` for the U-Net ones); ``--steps`` overrides their step counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TASKS = {"lift": ("robolearn/PandaLift-v0", 0.5), "peg_insert": ("robolearn/PandaPegInsert-v0", 0.25)}
"""Task short name -> (env id, expert noise of its demonstrations). The noise is chosen per task so the
demonstrations are imperfect but mostly successful: the scripted PandaPegInsert expert drops to 0%
success at noise 0.5 (sub-centimetre clearance), to 88% at 0.25; PandaLift stays at 100% at 0.5."""
METHODS = ("bc", "diffusion")
ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the presets are read from there, wherever a Ray worker runs)."""


@dataclass
class Cell:
    task: str
    method: str
    demos: int

    @property
    def name(self) -> str:
        return f"{self.task}_{self.method}_{self.demos}"


def collect_demos(task: str, data_root: Path, episodes: int) -> Path:
    """The task's demonstration dataset (collected once; reused when it holds enough episodes)."""
    from robolearn.collect import CollectConfig, collect
    from robolearn.datasets.reader import EpisodeDataset

    env_id, noise = TASKS[task]
    out = data_root / f"panda_{task}"
    if out.exists() and len(EpisodeDataset(out)) >= episodes:
        return out
    if out.exists():
        raise SystemExit(f"{out} holds fewer than {episodes} episodes; delete it to collect again")
    cfg = CollectConfig(env_id=env_id, policy="expert", episodes=episodes, out=str(out), noise=noise,
                        seed=0, num_envs=8)
    result = collect(cfg, progress=False)
    print(f"collected {out}: {result.kept} episodes, {result.successes} successful (noise {noise})", flush=True)
    return out


def run_cell(cell: Cell, args: argparse.Namespace) -> dict:
    """Train and evaluate one cell in this process; writes and returns its result."""
    import torch

    from robolearn.core.config import load_config
    from robolearn.evaluate import evaluate
    from robolearn.policies.checkpoint import load
    from robolearn.train import TrainConfig, train

    torch.set_num_threads(1)
    env_id, noise = TASKS[cell.task]
    preset = "bc" if cell.method == "bc" else args.diffusion_preset
    config = ROOT / "configs" / "bc" / f"panda_{cell.task}_{preset}.yaml"
    run_dir = Path(args.out) / cell.name
    overrides = [f"data.path={Path(args.data) / f'panda_{cell.task}'}", f"data.max_episodes={cell.demos}",
                 f"run_dir={run_dir}", "progress=false", "threads=1", "eval.env_id=", f"seed={args.seed}"]
    if args.steps:
        overrides.append(f"steps={args.steps}")
    cfg = load_config(TrainConfig, config, overrides)
    start = time.perf_counter()
    result = train(cfg)
    train_s = time.perf_counter() - start
    policy = load(result.checkpoint)
    start = time.perf_counter()
    ev = evaluate(policy, env_id, episodes=args.episodes, seed=10_000, num_envs=8, progress=False)
    record = {"task": cell.task, "method": cell.method, "demos": cell.demos, "noise": noise,
              "preset": str(config), "steps": cfg.steps, "batch_size": cfg.data.batch_size,
              "episodes": ev.episodes, "successes": int(sum(ev.successes)), **ev.scalars(),
              "train_s": train_s, "eval_s": time.perf_counter() - start}
    (run_dir / "result.json").write_text(json.dumps(record, indent=2))
    return record


def run_cell_job(job: tuple[Cell, dict]) -> dict:
    """One cell as a Ray task: :func:`run_cell` on ``(cell, vars(args))``."""
    cell, arg_dict = job
    return run_cell(cell, argparse.Namespace(**arg_dict))


def _spawn(cell: Cell, argv: list[str], log_dir: Path) -> None:
    log = log_dir / f"{cell.name}.log"
    cmd = [sys.executable, __file__, *argv, "--cell", f"{cell.task}:{cell.method}:{cell.demos}"]
    with log.open("w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    print(f"{cell.name}: {'done' if rc == 0 else f'FAILED (rc {rc}, see {log})'}", flush=True)


def table(out: Path, cells: list[Cell]) -> str:
    """Markdown table of the cells that have a result."""
    from robolearn.core.stats import format_rate

    rows = ["| task | method | demos | success [95% CI] | train s | eval s | steps |",
            "|---|---|---|---|---|---|---|"]
    for cell in cells:
        path = out / cell.name / "result.json"
        if not path.exists():
            rows.append(f"| {cell.task} | {cell.method} | {cell.demos} | not run | | | |")
            continue
        r = json.loads(path.read_text())
        rows.append(f"| {r['task']} | {r['method']} | {r['demos']} | {format_rate(r['successes'], r['episodes'])}"
                    f" | {r['train_s']:.0f} | {r['eval_s']:.0f} | {r['steps']} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--demos", nargs="+", type=int, default=[10, 30, 100], help="demonstration counts")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per cell")
    p.add_argument("--steps", type=int, default=0, help="training steps (0: the preset's)")
    p.add_argument("--diffusion-preset", default="diffusion_fast", help="configs/bc/panda_<task>_<this>.yaml")
    p.add_argument("--jobs", type=int, default=2, help="cells trained and evaluated at once")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--data", default="data/study", help="datasets go to <data>/panda_<task>")
    p.add_argument("--out", default="runs/study", help="cells go to <out>/<task>_<method>_<demos>")
    p.add_argument("--quick", action="store_true", help="10 demos, 200 steps, 10 episodes, under data|runs/study_quick")
    p.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run the cells as Ray tasks (robolearn[dist]) on this cluster instead of --jobs processes")
    p.add_argument("--cell", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.demos, args.steps, args.episodes = [10], args.steps or 200, 10
        args.data, args.out = args.data + "_quick", args.out + "_quick"
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.cell:
        task, method, demos = args.cell.split(":")
        record = run_cell(Cell(task, method, int(demos)), args)
        print(json.dumps(record))
        return 0
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for task in args.tasks:
        collect_demos(task, Path(args.data), max(args.demos))
    cells = [Cell(t, m, n) for t in args.tasks for m in args.methods for n in args.demos]
    todo = [c for c in cells if not (out / c.name / "result.json").exists()]
    print(f"{len(cells) - len(todo)} of {len(cells)} cells already done; running {len(todo)}", flush=True)
    start = time.perf_counter()
    if args.ray:
        from robolearn.dist.cluster import map_jobs

        args.data, args.out = str(Path(args.data).resolve()), str(out.resolve())
        map_jobs(run_cell_job, [(c, vars(args)) for c in todo], args.jobs, args.ray)
    else:
        with ThreadPoolExecutor(max(args.jobs, 1)) as pool:
            list(pool.map(lambda c: _spawn(c, argv, out / "logs"), todo))
    where = f"as Ray tasks ({args.ray})" if args.ray else f"{args.jobs} cells at a time"
    print(f"\nstudy wall-clock {time.perf_counter() - start:.0f} s ({where})\n")
    print(table(out, cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
