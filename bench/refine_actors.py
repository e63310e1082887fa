"""Refinement wall-clock with the envs stepped by Ray actors (runner ``ray``) against the single-process loop.

Each run is ``robolearn refine --config configs/refine/residual_lift.yaml`` in a fresh process, with the same
overrides for every runner plus ``runner=...``/``actors=...``; rounds interleave the runners (sync, ray with 1
actor, ray with 2, ... in a rotating order) and each figure is the min and median over rounds. Reported per
run: the loop's wall-clock (the CLI's ``N env steps in X s``: collection, updates, the evaluations, and for
``ray`` starting the Ray instance and the actors, reported apart as ``perf/collector_start_s``), the process's
wall-clock (with interpreter start-up and the demonstrations), updates and the final success rate.

    python bench/refine_actors.py [--steps 20000] [--rounds 2] [--actors 1 2] [--set learner.batch_size=64 ...]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(runner: str, actors: int, steps: int, extra: list[str], out: Path) -> dict[str, float]:
    """One refinement in its own process; its figures."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{runner}{actors}-", dir=out))
    cmd = [sys.executable, "-m", "robolearn", "refine", "--config", "configs/refine/residual_lift.yaml",
           "--steps", str(steps), "--run-dir", str(run_dir), "--threads", "1", f"runner={runner}",
           f"actors={actors}", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "eval/success_rate" in x]
    start = [x["perf/collector_start_s"] for x in lines if "perf/collector_start_s" in x]
    loop_s = float(re.search(r"env steps in ([\d.]+) s", proc.stdout).group(1))
    updates = int(re.search(r"(\d+) updates at", proc.stdout).group(1))
    return {"loop_s": loop_s, "process_s": wall, "actors_start_s": start[0] if start else 0.0, "updates": updates,
            "success": evals[-1]["eval/success_rate"] if evals else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run (key=value)")
    parser.add_argument("--out", default="runs/bench-refine-actors")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    variants = [("sync", 1)] + [("ray", n) for n in args.actors]
    rows: dict[str, list[dict[str, float]]] = {f"{r}-{n}": [] for r, n in variants}
    for k in range(args.rounds):
        order = variants[k % len(variants):] + variants[:k % len(variants)]
        for runner, actors in order:
            row = run_once(runner, actors, args.steps, args.set, out)
            rows[f"{runner}-{actors}"].append(row)
            print(f"round {k} {runner:4s} actors={actors}: {json.dumps(row)}", flush=True)
    print("\n| runner | loop wall-clock min / median (s) | of which actors' start (s) | process min / median (s) "
          "| updates | success |")
    print("|---|---|---|---|---|---|")
    for name, got in rows.items():
        success = ", ".join(f"{g['success']:.2f}" for g in got)
        loop = [g["loop_s"] for g in got]
        proc = [g["process_s"] for g in got]
        label = "sync (single process)" if name == "sync-1" else f"ray, {name.split('-')[1]} actor(s)"
        start = statistics.median(g["actors_start_s"] for g in got)
        print(f"| {label} | {min(loop):.0f} / {statistics.median(loop):.0f} | {start:.0f} | {min(proc):.0f} / "
              f"{statistics.median(proc):.0f} | {', '.join(str(int(g['updates'])) for g in got)} | "
              f"{success} |")


if __name__ == "__main__":
    main()
