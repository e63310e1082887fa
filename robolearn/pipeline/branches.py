"""The pipeline's later stages: refinement branches, the ROS 2 closed loop, and the report."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robolearn.core.config import to_dict
from robolearn.core.durable import atomic_write_json
from robolearn.core.stats import wilson_interval
from robolearn.pipeline.config import PipelineConfig, RefineStageConfig
from robolearn.pipeline.pipeline import evaluate_policy
from robolearn.pipeline.stages import Stage


def refine_config(cfg: PipelineConfig, branch: RefineStageConfig):
    """The branch's RefineConfig, checked (the method's params too): its settings, on the pipeline's task,
    base and demonstrations."""
    from robolearn.refine.config import RefineConfig, refine_config_from_dict

    settings = {**branch.settings, "method": branch.method, "env_id": cfg.env_id,
                "base": str(Path(cfg.run_dir) / "base"), "seed": cfg.seed}
    if branch.method == "residual":  # the demonstrations go to the offline buffer (RLPD-style 50/50)
        settings.setdefault("demos", str(Path(cfg.run_dir) / "data"))
    return refine_config_from_dict({**to_dict(RefineConfig()), **settings}, f"pipeline refine[{branch.method}]")


def _refine_stage(cfg: PipelineConfig, branch: RefineStageConfig) -> Stage:
    out = f"refine/{branch.method}"

    def run() -> dict[str, Any]:
        from robolearn.policy_factory import load_policy
        from robolearn.refine.loop import train
        from robolearn.wiring import refine_sources

        run_dir = Path(cfg.run_dir) / out
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        refine_cfg = refine_config(cfg, branch)
        result = train(refine_cfg, refine_sources(refine_cfg), run_dir=run_dir, resume=resume)
        curve = [{"env_steps": e["env_steps"], "success_rate": e["success_rate"], "wall_s": e.get("wall_s", 0.0)}
                 for e in result.evals]
        atomic_write_json(run_dir / "curve.json", curve)
        policy = load_policy(run_dir / "policy", cfg.env_id, seed=cfg.seed)
        records = [evaluate_policy(cfg, policy, branch.method, d) for d in cfg.eval.dynamics]
        selected = ({"env_steps": result.best["env_steps"], "success_rate": result.best["success_rate"]}
                    if result.best is not None else None)
        return {"env_steps": result.env_steps, "updates": result.updates, "resumed": resume,
                "selected": selected, "success": {r["dynamics"]: r["success_rate"] for r in records}}

    return Stage(f"refine_{branch.method}", run, (out,))


def refine_stages(cfg: PipelineConfig) -> list[Stage]:
    """One stage per refinement branch."""
    methods = [b.method for b in cfg.refine]
    if len(set(methods)) != len(methods):
        raise ValueError(f"refinement branches must differ in method, got {methods}")
    return [_refine_stage(cfg, branch) for branch in cfg.refine]


ROS_STEP_HZ = 20.0
"""Wall-clock rate of the ROS stage's twin and policy (Hz): slower than real time for the 2-core machine."""


def ros_stage(cfg: PipelineConfig) -> Stage:
    """The deployed policy drives the MuJoCo robot twin over ROS 2 through the safety node."""

    def run() -> dict[str, Any]:
        from robolearn.ros_nodes.launcher import DeployConfig, run_graph
        from robolearn.sim.registry import task

        run_dir = Path(cfg.run_dir)
        name = cfg.ros.policy
        policy = run_dir / ("base" if name == "base" else f"refine/{name}/policy")
        episode_s = task(cfg.env_id).max_episode_steps / ROS_STEP_HZ  # wall time of a full-length episode
        deploy = DeployConfig(
            env_id=cfg.env_id, domain_id=int(os.environ.get("ROBOLEARN_ROS_DOMAIN", "77")),
            nodes=["sim_robot", "policy", "safety"], log_dir=str(run_dir / "ros" / "logs"),
            timeout=60.0 + max(10.0, 1.5 * episode_s) * cfg.ros.episodes,
            params={
                "sim_robot": {"episodes": cfg.ros.episodes, "seed": cfg.eval.seed, "step_hz": ROS_STEP_HZ,
                              "wait_for_subscribers": 1},
                "policy": {"policy": str(policy), "control_hz": ROS_STEP_HZ, "replan_every": 0},
                "safety": {"tick_hz": 100.0, "limits.watchdog_timeout": 0.1, "limits.max_age": 0.2},
            },
        )
        result = run_graph(deploy, progress=False)
        n, wins = len(result.episodes), sum(bool(e["success"]) for e in result.episodes)
        if n == 0:
            raise RuntimeError(f"no episode finished over ROS 2 ({result.reason}); logs in {deploy.log_dir}")
        record = {"policy": f"{name} over ROS 2", "dynamics": "nominal", "episodes": n, "successes": wins,
                  "success_rate": wins / n, "ci95": list(wilson_interval(wins, n)),
                  "mean_return": None,
                  "mean_length": sum(e["length"] for e in result.episodes) / n, "videos": [],
                  "status": result.status, "reason": result.reason}
        atomic_write_json(run_dir / "eval" / f"ros_{name}__nominal.json", record)
        (run_dir / "ros").mkdir(parents=True, exist_ok=True)
        (run_dir / "ros" / "episodes.json").write_text(json.dumps(result.episodes, indent=2, default=str))
        return {"success_rate": wins / n, "episodes": n, "reason": result.reason,
                "exit_codes": {k: v for k, v in asdict(result)["exit_codes"].items()}}

    return Stage("ros", run, ("ros",))


def report_stage(cfg: PipelineConfig) -> Stage:
    def run() -> dict[str, Any]:
        from robolearn.pipeline.report import write_report

        html, md = write_report(cfg.run_dir, title=f"robolearn pipeline: {cfg.env_id}")
        return {"html": str(html), "md": str(md)}

    return Stage("report", run)
