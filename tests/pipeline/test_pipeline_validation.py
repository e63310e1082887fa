"""Pipeline settings are checked when the preset loads, before any stage runs: one-line errors naming the
key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from robolearn.cli.main import main
from robolearn.core.config import ConfigError, load_config
from robolearn.pipeline.config import PipelineConfig, RefineStageConfig
from robolearn.pipeline.pipeline import run_pipeline
from robolearn.pipeline.validation import load_pipeline_config, validate

PRESET = Path(__file__).resolve().parents[2] / "configs" / "pipelines" / "panda_lift.yaml"


def _error(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as err:
        load_pipeline_config(PRESET, overrides)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(PRESET)), message
    return message


def _cfg() -> PipelineConfig:
    return load_config(PipelineConfig, PRESET)


def _invalid(cfg: PipelineConfig) -> str:
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(("override", "expected"), [
    ("collect.episodes=-1", "collect.episodes must be >= 1, got -1; set collect.episodes to 1 or more"),
    ("collect.num_envs=0", "collect.num_envs must be >= 1, got 0"),
    ("train.steps=0", "train.steps must be >= 1, got 0"),
    ("eval.episodes=-5", "eval.episodes must be >= 1, got -5"),
    ("eval.num_envs=0", "eval.num_envs must be >= 1, got 0"),
    ("eval.videos=-1", "eval.videos must be >= 0, got -1; set eval.videos to 0 or more"),
    ("ros.episodes=0", "ros.episodes must be >= 1, got 0"),
])
def test_negative_counts(override, expected):
    assert expected in _error([override])


def test_ros_counts_are_ignored_while_the_ros_stage_is_off():
    cfg = load_pipeline_config(PRESET, ["ros.enabled=false", "ros.episodes=0", "ros.policy=none"])
    assert not cfg.ros.enabled


def test_unknown_task():
    message = _error(["env_id=robolearn/PandaFly-v0"])
    assert "env_id: unknown task 'robolearn/PandaFly-v0'; choose from" in message
    assert "robolearn/PandaLift-v0" in message


def test_safety_limits_that_the_safety_node_lacks():
    """A misspelt ros.safety limit fails when the preset loads, not when the ROS stage starts an hour later."""
    message = _error(["ros.safety={limits.geofence_radus: 4.5}"])
    assert "ros.safety: limits.geofence_radus is not a safety node limit" in message and "geofence_radius" in message
    assert "tick_hz is not" in _error(["ros.safety={tick_hz: 50}"])
    assert load_pipeline_config(PRESET, ["ros.safety={limits.max_step: 0.2}"]).ros.safety == {"limits.max_step": 0.2}


def test_observation_keys_the_task_lacks():
    message = _error(["train.policy.obs_keys=[joint_pos, ee_speed]"])
    assert "train.policy.obs_keys: robolearn/PandaLift-v0 has no observation 'ee_speed'; choose from" in message
    assert "'pixels/front' is not recorded; add 'front' to collect.cameras" in _error(
        ["train.policy.obs_keys=[joint_pos, pixels/front]"])
    load_pipeline_config(PRESET, ["train.policy.obs_keys=[joint_pos, pixels/front]", "collect.cameras=[front]"])


def test_dynamics_presets_that_do_not_exist():
    message = _error(["eval.dynamics=[nominal, windy]"])
    assert "eval.dynamics[1]:" in message and "no preset 'windy'; available: nominal" in message
    assert "eval.dynamics[2]: 'nominal' is listed twice" in _error(["eval.dynamics=[nominal, real-gap, nominal]"])
    assert "eval.dynamics is empty; list at least [nominal]" in _error(["eval.dynamics=[]"])


def test_unknown_refinement_method():
    cfg = _cfg()
    cfg.refine[1].method = "ppo"
    message = _invalid(cfg)
    assert "refine[1].method: unknown refinement method 'ppo'; choose from residual, dsrl" in message


def test_duplicate_branch_names():
    cfg = _cfg()
    cfg.refine.append(RefineStageConfig(method="residual"))
    assert "refine[2].method: a second 'residual' branch" in _invalid(cfg)


def test_branch_settings_the_pipeline_owns():
    cfg = _cfg()
    cfg.refine[0].settings["base"] = "expert:noise=0.5"
    assert "refine[0].settings.base: the pipeline sets it (its base); remove the key" in _invalid(cfg)


def test_noise_steering_branch_without_a_diffusion_base():
    message = _error(["train.policy.type=bc"])
    assert "refine[1].method: dsrl steers a diffusion base's noise, but train.policy.type is 'bc'" in message


def test_branch_settings_that_refine_rejects():
    cfg = _cfg()
    cfg.refine[0].settings["totl_env_steps"] = 5
    assert "refine[0].settings:" in _invalid(cfg) and "unknown key 'totl_env_steps'" in _invalid(cfg)
    cfg = _cfg()
    cfg.refine[1].settings["total_env_steps"] = -1
    assert "refine[1].settings: total_env_steps (--steps) must be >= 1, got -1" in _invalid(cfg)


def test_ros_stage_deploys_a_branch_the_pipeline_refines():
    message = _error(["ros.policy=rlpd"])
    assert "ros.policy: 'rlpd' is not a policy this pipeline makes; choose from residual, dsrl, base" in message
    load_pipeline_config(PRESET, ["ros.policy=base"])


def test_ros_stage_on_a_robot_the_nodes_cannot_drive(monkeypatch):
    from robolearn.ros_nodes import embodiments

    monkeypatch.delitem(embodiments.EMBODIMENTS, "arm")
    assert "ros.enabled: the ROS 2 nodes cannot drive robolearn/PandaLift-v0 (embodiment 'arm'" in _error([])
    load_pipeline_config(PRESET, ["ros.enabled=false"])


def test_run_pipeline_checks_before_any_stage(tmp_path):
    cfg = load_config(PipelineConfig, PRESET, [f"run_dir={tmp_path / 'run'}", "eval.dynamics=[nominal, windy]"])
    with pytest.raises(ConfigError, match=r"eval\.dynamics\[1\]"):
        run_pipeline(cfg)
    assert not (tmp_path / "run").exists()


def test_the_command_prints_the_error_and_runs_nothing(tmp_path, capsys):
    code = main(["pipeline", str(PRESET), f"run_dir={tmp_path / 'run'}", "eval.episodes=-3"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "config error:" in err and "eval.episodes must be >= 1, got -3" in err
    assert not (tmp_path / "run").exists()


def test_scripted_base_and_task_settings():
    assert "base: unknown policy 'controller'" in _error(["base=controller"])
    assert "base: policy 'expert:gain=2': unknown option 'gain'" in _error(["base=expert:gain=2"])
    message = _error(["base=expert"])  # the preset's DSRL branch needs a diffusion base
    assert "refine[1].method: dsrl steers a diffusion base's noise, but the base is scripted (base: expert)" in message
    assert "task: robolearn/PandaLift-v0 refuses {'cube_mass': 3}" in _error(["task={cube_mass: 3}"])
    assert "eval.tasks.heavy: robolearn/PandaLift-v0 refuses" in _error(["eval.tasks={heavy: {cube_mass: 3}}"])
    cfg = load_pipeline_config(PRESET, ["base=expert:noise=0.5", "refine=[{method: residual}]"])
    assert not cfg.trains_base
