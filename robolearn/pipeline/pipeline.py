"""The main job: demonstrations -> base policy -> evaluation -> refinement -> ROS 2 -> report.

:func:`build_stages` turns a :class:`PipelineConfig` into resumable stages (see
:mod:`robolearn.pipeline.stages`); :func:`run_pipeline` validates the config and runs them. Every stage
writes into the run directory, whose paths :class:`~robolearn.pipeline.layout.RunLayout` names.

This module is the top of the package; the imports point one way::

    pipeline -> validation -> branches -> report -> records -> config -> layout
                                        -> stages -> layout
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

from robolearn.core.config import save_config
from robolearn.pipeline.branches import refine_stages, report_stage, ros_stage
from robolearn.pipeline.config import SEED_STRIDE, PipelineConfig, base_spec
from robolearn.pipeline.layout import refine_stage_name
from robolearn.pipeline.records import close_eval_envs, eval_conditions, evaluate_policy
from robolearn.pipeline.stages import Stage, StageFn, StageRunner
from robolearn.pipeline.validation import validate
from robolearn.rl.threads import set_torch_threads
from robolearn.sim.registry import gym_make


def _scripted(cfg: PipelineConfig) -> dict[str, Any]:
    """The record of the collect and train stages of a pipeline whose base is scripted."""
    return {"skipped": f"the base is scripted (base: {cfg.base}); nothing to collect or train"}


def _collect_stage(cfg: PipelineConfig) -> StageFn:
    def run() -> dict[str, Any]:
        from robolearn.collect import collect

        if not cfg.trains_base:
            return _scripted(cfg)
        collect_cfg = copy.deepcopy(cfg.collect)
        collect_cfg.env_id, collect_cfg.out = cfg.env_id, str(cfg.layout.data)
        collect_cfg.task = {**cfg.task, **collect_cfg.task}
        collect_cfg.seed += SEED_STRIDE * cfg.seed
        result = collect(collect_cfg)
        return asdict(result)

    return run


def _train_stage(cfg: PipelineConfig) -> StageFn:
    def run() -> dict[str, Any]:
        from robolearn.train import train

        if not cfg.trains_base:
            return _scripted(cfg)
        train_cfg = copy.deepcopy(cfg.train)
        train_cfg.run_dir = str(cfg.layout.base)
        train_cfg.data.path = str(cfg.layout.data)
        train_cfg.seed += cfg.seed
        train_cfg.policy.seed += cfg.seed
        result = train(train_cfg)
        return {"step": result.step, "checkpoint": str(result.checkpoint), "metrics": result.metrics}

    return run


def _eval_expert_stage(cfg: PipelineConfig) -> StageFn:
    def run() -> dict[str, Any]:
        from robolearn.policy_factory import make_policy

        if not cfg.trains_base:  # the scripted base is evaluated as the base
            return {"skipped": f"the base is scripted (base: {cfg.base}); see eval_base"}
        env = gym_make(cfg.env_id)
        expert = make_policy("expert", cfg.env_id, env.action_space, noise=0.0, seed=cfg.seed)
        noisy = make_policy("expert", cfg.env_id, env.action_space, noise=cfg.collect.noise, seed=cfg.seed)
        records = [evaluate_policy(cfg, expert, "expert", "nominal"),
                   evaluate_policy(cfg, noisy, f"demonstrator (noise {cfg.collect.noise:g})", "nominal")]
        return {"success": {r["policy"]: r["success_rate"] for r in records}}

    return run


def _eval_base_stage(cfg: PipelineConfig) -> StageFn:
    def run() -> dict[str, Any]:
        from robolearn.policy_factory import load_policy

        policy = load_policy(base_spec(cfg), cfg.env_id, seed=cfg.seed, device=cfg.eval.device)
        records = [evaluate_policy(cfg, policy, "base", c) for c in eval_conditions(cfg)]
        out: dict[str, Any] = {"success": {r["dynamics"]: r["success_rate"] for r in records}}
        if getattr(policy, "noise_shape", None):  # a generative base: zero-noise sampling is a variant too
            from robolearn.refine.noise_steering import ZeroNoisePolicy

            zero = ZeroNoisePolicy(policy)
            out["zero_noise"] = {c: evaluate_policy(cfg, zero, "base (zero noise)", c)["success_rate"]
                                 for c in eval_conditions(cfg)}
        return out

    return run


def build_stages(cfg: PipelineConfig) -> list[Stage]:
    """The pipeline's stages, in order."""
    layout = cfg.layout
    stages = [
        Stage("collect", _collect_stage(cfg), (layout.data,)),
        Stage("train", _train_stage(cfg), (layout.base,)),
        Stage("eval_expert", _eval_expert_stage(cfg)),
        Stage("eval_base", _eval_base_stage(cfg)),
        *refine_stages(cfg),
    ]
    if cfg.ros.enabled:
        stages.insert(_ros_position(cfg, stages), ros_stage(cfg))
    stages.append(report_stage(cfg))
    return stages


def _ros_position(cfg: PipelineConfig, stages: list[Stage]) -> int:
    """Where the ROS stage goes: with ``ros.overlap``, right after the stage that makes its policy (the base's
    evaluation, or its branch), so it runs beside the later branches; otherwise after every branch."""
    if not cfg.ros.overlap:
        return len(stages)
    maker = "eval_base" if cfg.ros.policy == "base" else refine_stage_name(cfg.ros.policy)
    names = [s.name for s in stages]
    return names.index(maker) + 1 if maker in names else len(stages)


def run_pipeline(cfg: PipelineConfig, force: str | None = None) -> dict[str, dict[str, Any]]:
    """Validate ``cfg``, set the torch thread count (``cfg.threads``, on a resumed run too), then run (or
    resume) the pipeline; ``force`` reruns from that stage."""
    validate(cfg)
    set_torch_threads(cfg.threads)
    layout = cfg.layout
    layout.root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, layout.config)
    runner = StageRunner(layout.root, build_stages(cfg))
    if force:
        runner.force(force)
    try:
        return runner.run()
    finally:
        close_eval_envs()
