"""The main job: demonstrations -> base policy -> evaluation -> refinement -> ROS 2 -> report.

:func:`build_stages` turns a :class:`PipelineConfig` into resumable stages (see
:mod:`robolearn.pipeline.stages`); :func:`run_pipeline` runs them. Every stage writes into the run
directory:

    data/                     demonstrations (robolearn dataset)
    base/                     the base policy's training run and checkpoints
    refine/<method>/          each refinement branch (checkpoints, metrics, the refined policy)
    eval/<policy>__<dynamics>.json, eval/videos/<policy>/   sim evaluations
    ros/                      the closed loop over ROS 2
    report.html, report.md    the report
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robolearn.core.config import save_config
from robolearn.core.durable import atomic_write_json
from robolearn.core.protocols import Policy
from robolearn.core.stats import wilson_interval
from robolearn.pipeline.config import PipelineConfig
from robolearn.pipeline.stages import Stage, StageRunner
from robolearn.sim.registry import gym_make


def _eval_record(result, policy_name: str, dynamics: str) -> dict[str, Any]:
    n, wins = result.episodes, sum(result.successes)
    return {
        "policy": policy_name, "dynamics": dynamics, "episodes": n, "successes": wins,
        "success_rate": wins / n, "ci95": list(wilson_interval(wins, n)),
        "mean_return": sum(result.returns) / n, "mean_length": sum(result.lengths) / n,
        "videos": [str(v) for v in result.videos],
    }


def evaluate_policy(cfg: PipelineConfig, policy: Policy, name: str, dynamics: str) -> dict[str, Any]:
    """Evaluate ``policy`` on ``dynamics``; write and return ``eval/<name>__<dynamics>.json``."""
    from robolearn.evaluate import evaluate

    run = Path(cfg.run_dir)
    videos = cfg.eval.videos if dynamics == "nominal" else 0
    result = evaluate(policy, cfg.env_id, episodes=cfg.eval.episodes, seed=cfg.eval.seed,
                      num_envs=cfg.eval.num_envs, dynamics=dynamics, video_dir=run / "eval" / "videos" / name,
                      videos=videos)
    record = _eval_record(result, name, dynamics)
    atomic_write_json(run / "eval" / f"{name}__{dynamics}.json", record)
    return record


def load_evals(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every evaluation record of a run directory."""
    return [json.loads(p.read_text()) for p in sorted((Path(run_dir) / "eval").glob("*.json"))]


def _collect_stage(cfg: PipelineConfig):
    def run() -> dict[str, Any]:
        from robolearn.collect import collect

        collect_cfg = copy.deepcopy(cfg.collect)
        collect_cfg.env_id, collect_cfg.out = cfg.env_id, str(Path(cfg.run_dir) / "data")
        result = collect(collect_cfg)
        return asdict(result)

    return run


def _train_stage(cfg: PipelineConfig):
    def run() -> dict[str, Any]:
        from robolearn.train import train

        train_cfg = copy.deepcopy(cfg.train)
        train_cfg.run_dir = str(Path(cfg.run_dir) / "base")
        train_cfg.data.path = str(Path(cfg.run_dir) / "data")
        result = train(train_cfg)
        return {"step": result.step, "checkpoint": str(result.checkpoint), "metrics": result.metrics}

    return run


def _eval_expert_stage(cfg: PipelineConfig):
    def run() -> dict[str, Any]:

        from robolearn.policy_factory import make_policy

        env = gym_make(cfg.env_id)
        expert = make_policy("expert", cfg.env_id, env.action_space, noise=0.0, seed=cfg.seed)
        noisy = make_policy("expert", cfg.env_id, env.action_space, noise=cfg.collect.noise, seed=cfg.seed)
        records = [evaluate_policy(cfg, expert, "expert", "nominal"),
                   evaluate_policy(cfg, noisy, f"demonstrator (noise {cfg.collect.noise:g})", "nominal")]
        return {"success": {r["policy"]: r["success_rate"] for r in records}}

    return run


def _eval_base_stage(cfg: PipelineConfig):
    def run() -> dict[str, Any]:
        from robolearn.policies.checkpoint import load

        policy = load(Path(cfg.run_dir) / "base")
        records = [evaluate_policy(cfg, policy, "base", d) for d in cfg.eval.dynamics]
        out: dict[str, Any] = {"success": {r["dynamics"]: r["success_rate"] for r in records}}
        if getattr(policy, "noise_shape", None):  # the deterministic baseline DSRL starts from
            from robolearn.refine.noise_steering import ZeroNoisePolicy

            out["zero_noise"] = evaluate_policy(cfg, ZeroNoisePolicy(policy), "base (zero noise)", "nominal")[
                "success_rate"]
        return out

    return run


def build_stages(cfg: PipelineConfig) -> list[Stage]:
    """The pipeline's stages, in order."""
    from robolearn.pipeline.branches import refine_stages, report_stage, ros_stage

    stages = [
        Stage("collect", _collect_stage(cfg), ("data",)),
        Stage("train", _train_stage(cfg), ("base",)),
        Stage("eval_expert", _eval_expert_stage(cfg)),
        Stage("eval_base", _eval_base_stage(cfg)),
        *refine_stages(cfg),
    ]
    if cfg.ros.enabled:
        stages.append(ros_stage(cfg))
    stages.append(report_stage(cfg))
    return stages


def run_pipeline(cfg: PipelineConfig, force: str | None = None) -> dict[str, dict[str, Any]]:
    """Run (or resume) the pipeline; ``force`` reruns from that stage."""
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    runner = StageRunner(run_dir, build_stages(cfg))
    if force:
        runner.force(force)
    return runner.run()
