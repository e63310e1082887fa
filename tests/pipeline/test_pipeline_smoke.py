"""The real default pipeline at smoke budgets: every stage runs (ROS included) and the report lists what it must."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from robolearn.core.config import load_config
from robolearn.pipeline.branches import deploy_config
from robolearn.pipeline.config import PipelineConfig
from robolearn.pipeline.layout import refine_stage_name
from robolearn.pipeline.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[2]

SMOKE = [
    "collect.episodes=3", "collect.num_envs=3", "train.steps=30", "train.save_every=30", "train.log_every=10",
    "train.progress=false", "eval.episodes=4", "eval.num_envs=4", "eval.videos=0", "eval.dynamics=[nominal]",
    "ros.episodes=1",
]


@pytest.mark.slow
def test_default_pipeline_at_smoke_budgets(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOLEARN_ROS_DOMAIN", str(60 + os.getpid() % 30))  # a private ROS domain
    cfg = load_config(PipelineConfig, ROOT / "configs/pipelines/panda_lift.yaml", [f"run_dir={tmp_path}", *SMOKE])
    for branch in cfg.refine:  # a few hundred env steps of each branch, with its select_best evaluations
        branch.settings.update(total_env_steps=400, random_steps=200, critic_warmup_updates=20, eval_every=200,
                               eval_episodes=4, eval_envs=4, checkpoint_every=200, num_envs=4,
                               eval_budget=0)  # smoke budgets: the evaluations outweigh the training
        branch.settings["learner"] = {**branch.settings.get("learner", {}), "hidden": [32, 32], "batch_size": 32}
    layout = cfg.layout
    results = run_pipeline(cfg)
    # the ROS 2 closed loop starts once its residual exists and runs beside the DSRL branch
    assert list(results) == ["collect", "train", "eval_expert", "eval_base", "refine_residual", "ros",
                             "refine_dsrl", "report"]
    assert "zero_noise" in results["eval_base"]  # the diffusion base from zero noise, DSRL's starting point
    for method in ("residual", "dsrl"):
        record = results[refine_stage_name(method)]
        curve = json.loads(layout.branch_curve(method).read_text())
        assert record["selection"]["evaluations"] == len(curve)
        if record["selection"]["rule"] == "best":
            assert record["selected"]["success_rate"] == max(p["success_rate"] for p in curve)
        assert (layout.branch_policy(method) / "actor.pt").is_file()
    assert results[refine_stage_name("residual")]["selection"]["rule"] == "last"
    assert results["ros"]["episodes"] == 1
    report = layout.report_md.read_text()
    for row in ("| base (zero noise) |", "| residual |", "| dsrl |", "| residual over ROS 2 |"):
        assert row in report, row
    assert layout.learning_curves_plot.stat().st_size > 10_000
    assert layout.ros_episodes.is_file() and layout.ros_eval_record("residual").is_file()
    for path in (layout.config, layout.data, layout.base, layout.eval_record("base", "nominal"), layout.report_html):
        assert path.exists(), path
    markers = {name: layout.stage_marker(name).stat().st_mtime_ns for name in results}
    again = run_pipeline(cfg)  # the finished run resumes: every stage is skipped
    assert list(again) == list(results)
    assert {name: layout.stage_marker(name).stat().st_mtime_ns for name in results} == markers


@pytest.mark.slow
def test_scripted_base_pipeline_at_smoke_budgets(tmp_path, monkeypatch):
    """The humanoid preset refines the standing controller itself: no demonstrations, no training; the 60 N
    condition is evaluated beside the preset's dynamics; the twin over ROS 2 pushes at the preset's 120 N."""
    monkeypatch.setenv("ROBOLEARN_ROS_DOMAIN", str(60 + (os.getpid() + 7) % 30))
    cfg = load_config(PipelineConfig, ROOT / "configs/pipelines/g1_push_recovery.yaml",
                      [f"run_dir={tmp_path}", "eval.episodes=2", "eval.num_envs=2", "eval.videos=0",
                       "eval.dynamics=[nominal]", "ros.episodes=1"])
    cfg.refine[0].settings.update(total_env_steps=200, critic_warmup_updates=20, eval_every=0, eval_episodes=2,
                                  eval_envs=2, checkpoint_every=0, num_envs=2, eval_budget=0)
    cfg.refine[0].settings["learner"] = {**cfg.refine[0].settings["learner"], "hidden": [32, 32], "batch_size": 32}
    layout = cfg.layout
    results = run_pipeline(cfg)
    assert "skipped" in results["collect"] and "skipped" in results["train"]
    assert not layout.data.exists() and not layout.base.exists()
    assert set(results["eval_base"]["success"]) == {"nominal", "push-60N"}
    assert set(results[refine_stage_name("residual")]["success"]) == {"nominal", "push-60N"}
    assert json.loads(deploy_config(cfg).params["sim_robot"]["task"]) == {"push_force": 120.0}
    assert results["ros"]["episodes"] == 1
    report = layout.report_md.read_text()
    for row in ("| base (best base) | push-60N |", "| residual | push-60N |", "| residual over ROS 2 |"):
        assert row in report, row


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["quad_hover", "quad_gates", "g1_bimanual_lift"])
def test_other_embodiments_presets_at_smoke_budgets(tmp_path, monkeypatch, preset):
    """The quadrotor and humanoid presets run end to end at tiny budgets, their refined policy over ROS 2 too."""
    monkeypatch.setenv("ROBOLEARN_ROS_DOMAIN", str(60 + (os.getpid() + len(preset)) % 30))
    cfg = load_config(PipelineConfig, ROOT / f"configs/pipelines/{preset}.yaml",
                      [f"run_dir={tmp_path}", *SMOKE, "eval.episodes=2", "eval.num_envs=2"])
    for branch in cfg.refine:
        branch.settings.update(total_env_steps=160, critic_warmup_updates=10, eval_every=0, eval_episodes=2,
                               eval_envs=2, checkpoint_every=0, num_envs=2, eval_budget=0, random_steps=0)
        branch.settings["learner"] = {**branch.settings.get("learner", {}), "hidden": [32, 32], "batch_size": 32}
    results = run_pipeline(cfg)
    assert results["collect"]["kept"] == 3 and results["train"]["step"] == 30
    for branch in cfg.refine:
        assert (cfg.layout.branch_policy(branch.method) / "refined.yaml").is_file()
    assert results["ros"]["episodes"] == 1
    assert f"| {cfg.ros.policy} over ROS 2 |" in cfg.layout.report_md.read_text()
