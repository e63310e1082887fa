"""Every pipeline preset loads and passes the load-time checks (observation keys its task has, a deployed
branch it refines, dynamics presets that exist...)."""

from pathlib import Path

import pytest

from robolearn.core.config import load_config
from robolearn.pipeline.config import PipelineConfig, camera_task
from robolearn.pipeline.validation import load_pipeline_config
from robolearn.sim.registry import gym_make, task

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "pipelines").glob("*.yaml"))


def test_presets_cover_arm_humanoid_and_quadrotor():
    embodiments = {task(load_config(PipelineConfig, p).env_id).embodiment for p in PRESETS}
    assert embodiments == {"arm", "humanoid", "quadrotor"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_matches_its_task(preset):
    cfg = load_pipeline_config(preset)
    env = gym_make(cfg.env_id, **camera_task(cfg))  # a camera preset's pixels/<camera> keys too
    if cfg.trains_base:
        missing = set(cfg.train.policy.obs_keys) - set(env.observation_space.spaces)
        assert not missing, f"{preset.name}: obs_keys {sorted(missing)} not in {cfg.env_id}"
        assert cfg.collect.noise > 0, "demonstrations should be imperfect"
    methods = [r.method for r in cfg.refine]
    assert cfg.ros.policy in [*methods, "base"]
    env.close()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_refine_branches_load_with_their_methods_params(preset):
    """Each branch's settings make a checked RefineConfig: its method's params, by name (a moved key such as
    residual_scale fails here, naming params.scale)."""
    from robolearn.pipeline.branches import refine_config
    from robolearn.refine.methods import METHODS

    cfg = load_config(PipelineConfig, preset)
    for branch in cfg.refine:
        assert isinstance(refine_config(cfg, branch).method_params(), METHODS[branch.method].params_type)
