"""The pipeline's later stages: refinement branches, the ROS 2 closed loop, and the report."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from typing import Any

from robolearn.core.config import to_dict
from robolearn.core.durable import atomic_write_json
from robolearn.pipeline.config import PipelineConfig, RefineStageConfig, base_spec, camera_task
from robolearn.pipeline.layout import refine_stage_name
from robolearn.pipeline.records import eval_conditions, eval_record, evaluate_policy
from robolearn.pipeline.report import write_report
from robolearn.pipeline.stages import Stage


def refine_config(cfg: PipelineConfig, branch: RefineStageConfig):
    """The branch's RefineConfig, checked (the method's params and the evaluation budget too): its settings,
    on the pipeline's task, base and demonstrations."""
    from robolearn.refine.config import RefineConfig, refine_config_from_dict
    from robolearn.refine.methods import METHODS
    from robolearn.sim.registry import task

    settings = {**branch.settings, "method": branch.method, "env_id": cfg.env_id, "base": base_spec(cfg),
                "seed": cfg.seed, "task": {**camera_task(cfg), **branch.settings.get("task", {})}}
    if not cfg.privileged and cfg.trains_base:  # the networks see what the base sees: no privileged state
        settings.setdefault("obs_keys", list(cfg.train.policy.obs_keys))
    if branch.method in METHODS and METHODS[branch.method].demos_by_default and cfg.trains_base:
        settings.setdefault("demos", str(cfg.layout.data))
    return refine_config_from_dict({**to_dict(RefineConfig()), **settings}, f"pipeline refine[{branch.method}]",
                                   time_limit=lambda env_id: task(env_id).max_episode_steps)


def selection_record(refine_cfg: Any, result: Any) -> dict[str, Any]:
    """How a branch's kept policy was chosen and what the choice cost: ``rule`` (``best``: the best in-loop
    evaluation's actor; ``last``: the final actor), the in-loop ``evaluations``, the ``episodes`` they ran
    (on the refinement's own seeds, 10_000 + i, never the report's) and, for ``best``, the ``episodes`` the
    choice itself read (all of them)."""
    evaluations = len(result.evals)
    episodes = evaluations * refine_cfg.eval_episodes
    rule = "best" if refine_cfg.select_best else "last"
    return {"rule": rule, "evaluations": evaluations, "episodes_per_evaluation": refine_cfg.eval_episodes,
            "in_loop_episodes": episodes, "selection_episodes": episodes if rule == "best" else 0}


def _refine_stage(cfg: PipelineConfig, branch: RefineStageConfig) -> Stage:
    layout = cfg.layout

    def run() -> dict[str, Any]:
        from robolearn.policy_factory import load_policy
        from robolearn.refine.loop import train
        from robolearn.wiring import refine_sources

        checkpoints = layout.branch_checkpoints(branch.method)
        resume = checkpoints.is_dir() and any(checkpoints.iterdir())
        refine_cfg = refine_config(cfg, branch)
        result = train(refine_cfg, refine_sources(refine_cfg), run_dir=layout.branch(branch.method), resume=resume)
        curve = [{"env_steps": e["env_steps"], "success_rate": e["success_rate"], "wall_s": e.get("wall_s", 0.0)}
                 for e in result.evals]
        atomic_write_json(layout.branch_curve(branch.method), curve)
        policy = load_policy(layout.branch_policy(branch.method), cfg.env_id, seed=cfg.seed, device=cfg.eval.device)
        records = [evaluate_policy(cfg, policy, branch.method, c) for c in eval_conditions(cfg)]
        selected = ({"env_steps": result.best["env_steps"], "success_rate": result.best["success_rate"]}
                    if result.best is not None else None)
        return {"env_steps": result.env_steps, "updates": result.updates, "resumed": resume,
                "selected": selected, "selection": selection_record(refine_cfg, result),
                "success": {r["dynamics"]: r["success_rate"] for r in records}}

    return Stage(refine_stage_name(branch.method), run, (layout.branch(branch.method),))


def refine_stages(cfg: PipelineConfig) -> list[Stage]:
    """One stage per refinement branch (their methods differ: checked when the config loads)."""
    return [_refine_stage(cfg, branch) for branch in cfg.refine]


def deploy_config(cfg: PipelineConfig) -> Any:
    """The ROS 2 node graph of the ROS stage: twin, policy and safety node at ``ros.step_hz`` (0: the task's
    control rate, real time). With ``collect.cameras`` the twin renders them as the task's own ``pixels/<camera>``
    frames (the pipeline's refinement frames) and publishes each as ``sensor_msgs/Image`` rgb8 on
    ``image/<camera>``, which the policy node subscribes to for the ``pixels/<camera>`` keys its policy reads."""
    from robolearn.ros_nodes.launcher import DeployConfig
    from robolearn.sim.registry import task
    from robolearn.wiring import control_hz

    layout = cfg.layout
    policy = base_spec(cfg) if cfg.ros.policy == "base" else str(layout.policy(cfg.ros.policy))
    step_hz = cfg.ros.step_hz or control_hz(cfg.env_id, cfg.task)
    episode_s = task(cfg.env_id).max_episode_steps / step_hz  # wall time of a full-length episode
    return DeployConfig(
        env_id=cfg.env_id, domain_id=_domain_from_env(),
        nodes=["sim_robot", "policy", "safety"], log_dir=str(layout.ros_logs),
        timeout=60.0 + max(10.0, 1.5 * episode_s) * cfg.ros.episodes,
        params={
            "sim_robot": {"episodes": cfg.ros.episodes, "seed": cfg.eval.seed, "step_hz": step_hz,
                          "wait_for_subscribers": 1, "task": json.dumps(camera_task(cfg)),
                          "camera": ",".join(cfg.collect.cameras), "image_format": "raw"},
            "policy": {"policy": policy, "control_hz": step_hz, "replan_every": 0, "device": cfg.eval.device},
            "safety": {"tick_hz": 100.0, "limits.watchdog_timeout": 0.1, "limits.max_age": 0.2, **cfg.ros.safety},
        },
    )


def _domain_from_env() -> int | None:
    """``ROBOLEARN_ROS_DOMAIN`` when set; else None: the launcher takes a free domain (a graph owns its domain)."""
    value = os.environ.get("ROBOLEARN_ROS_DOMAIN")
    return int(value) if value else None


def ros_stage(cfg: PipelineConfig) -> Stage:
    """The deployed policy drives the MuJoCo robot twin over ROS 2 through the safety node; with
    ``ros.overlap`` a background stage (beside the later branches), stopped early if the pipeline fails."""
    layout = cfg.layout
    stop = threading.Event()

    def run() -> dict[str, Any]:
        from robolearn.ros_nodes.launcher import run_graph

        name = cfg.ros.policy
        deploy = deploy_config(cfg)
        result = run_graph(deploy, progress=False, stop=stop)
        if not result.episodes:
            raise RuntimeError(f"no episode finished over ROS 2 ({result.reason}); logs in {deploy.log_dir}")
        record = eval_record(f"{name} over ROS 2", "nominal", [bool(e["success"]) for e in result.episodes],
                             [e["length"] for e in result.episodes], status=result.status, reason=result.reason)
        atomic_write_json(layout.ros_eval_record(name), record)
        layout.ros_dir.mkdir(parents=True, exist_ok=True)
        layout.ros_episodes.write_text(json.dumps(result.episodes, indent=2, default=str))
        return {"success_rate": record["success_rate"], "episodes": record["episodes"], "reason": result.reason,
                "exit_codes": {k: v for k, v in asdict(result)["exit_codes"].items()}}

    return Stage("ros", run, (layout.ros_dir,), background=cfg.ros.overlap, cancel=stop.set)


def report_stage(cfg: PipelineConfig) -> Stage:
    """``report.html`` and ``report.md`` from everything the earlier stages wrote."""

    def run() -> dict[str, Any]:
        html, md = write_report(cfg.run_dir, title=f"robolearn pipeline: {cfg.env_id}")
        return {"html": str(html), "md": str(md)}

    return Stage("report", run, waits=True)
