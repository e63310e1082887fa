"""The in-loop evaluation budget: every preset's evaluations cost at most ``eval_budget`` of its training env
steps at the task's time limit, and a config over it fails at load time with one line naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robolearn.core.config import ConfigError, to_dict
from robolearn.refine.config import RefineConfig, load_refine_config, refine_config_from_dict
from robolearn.sim.registry import task

ROOT = Path(__file__).resolve().parents[2]
REFINE_PRESETS = sorted((ROOT / "configs" / "refine").glob("*.yaml"))
PIPELINE_PRESETS = sorted((ROOT / "configs" / "pipelines").glob("*.yaml"))


def time_limit(env_id: str) -> int:
    return task(env_id).max_episode_steps


def test_eval_env_steps_counts_start_periodic_and_end_evaluations() -> None:
    cfg = RefineConfig(total_env_steps=20_000, eval_every=2_500, eval_episodes=32, eval_envs=8)
    assert cfg.eval_env_steps(100) == 9 * 32 * 100  # at 0, 2.5k, ..., 20k
    cfg = RefineConfig(total_env_steps=20_000, eval_every=0, eval_episodes=5, eval_envs=8)
    assert cfg.eval_env_steps(100) == 2 * 8 * 100  # start and end; every env runs its quota of one episode


@pytest.mark.parametrize("preset", REFINE_PRESETS, ids=lambda p: p.name)
def test_refine_presets_fit_their_budget(preset) -> None:
    cfg = load_refine_config(preset, [], time_limit=time_limit)
    assert cfg.eval_env_steps(time_limit(cfg.env_id)) <= cfg.eval_budget * cfg.total_env_steps


@pytest.mark.parametrize("preset", PIPELINE_PRESETS, ids=lambda p: p.name)
def test_pipeline_branches_fit_their_budget(preset) -> None:
    data = yaml.safe_load(preset.read_text())
    for branch in data["refine"]:
        settings = {**to_dict(RefineConfig()), **branch["settings"], "method": branch["method"],
                    "env_id": data["env_id"]}
        cfg = refine_config_from_dict(settings, preset.name, time_limit=time_limit)
        assert cfg.eval_env_steps(time_limit(cfg.env_id)) <= 0.25 * cfg.total_env_steps


def test_over_budget_fails_with_one_line_naming_the_fix() -> None:
    preset = ROOT / "configs" / "refine" / "residual_lift.yaml"
    with pytest.raises(ConfigError) as err:
        load_refine_config(preset, ["eval_every=2500", "eval_episodes=64"], time_limit=time_limit)
    message = str(err.value)
    assert "\n" not in message and "raise eval_every" in message and "eval_episodes" in message
    assert load_refine_config(preset, ["eval_every=2500", "eval_budget=0"], time_limit=time_limit)  # unchecked
