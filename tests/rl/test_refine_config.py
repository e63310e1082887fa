"""Refinement configs: every preset loads with its method's params checked; bad and moved keys fail at load
time with one line naming the key and the fix; a run saved in the earlier layout still resumes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robolearn.core.config import ConfigError, to_dict
from robolearn.refine.config import RefineConfig, load_refine_config
from robolearn.refine.methods import METHODS, NoiseParams, ResidualParams

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "refine").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_loads_with_its_methods_params(preset) -> None:
    cfg = load_refine_config(preset, [])
    assert isinstance(cfg.method_params(), METHODS[cfg.method].params_type)


def test_bad_and_moved_keys_fail_with_one_line_naming_the_fix() -> None:
    preset = next(p for p in PRESETS if "residual" in p.name)
    with pytest.raises(ConfigError, match="'residual_scale'.*moved to 'params.scale'") as moved:
        load_refine_config(preset, ["residual_scale=0.2"])
    with pytest.raises(ConfigError, match="unknown key 'scal' for ResidualParams; allowed keys: base_noise, "
                       "images, plan_steps, scale") as bad:
        load_refine_config(preset, ["params.scal=0.2"])
    with pytest.raises(ConfigError, match="unknown key 'scale' for NoiseParams; allowed keys: bound"):
        load_refine_config(preset, ["method=dsrl"])
    with pytest.raises(ConfigError, match="choose from residual, dsrl, dsrl-na, rlpd"):
        load_refine_config(preset, ["method=sac"])
    assert "\n" not in str(moved.value) and "\n" not in str(bad.value)
    assert load_refine_config(preset, ["params.scale=[0.2,0.2,0.2,0.2,1.0]"]).method_params() == ResidualParams(
        scale=[0.2, 0.2, 0.2, 0.2, 1.0])


@pytest.mark.parametrize(("method", "old", "params"), [
    ("residual", {"residual_scale": 0.2, "residual_plan_steps": 3, "noise_bound": 1.5},
     ResidualParams(scale=0.2, plan_steps=3)),
    ("dsrl-na", {"residual_scale": 0.1, "residual_plan_steps": 0, "noise_bound": 1.2}, NoiseParams(bound=1.2)),
])
def test_a_run_saved_in_the_earlier_layout_resumes(tmp_path, method, old, params) -> None:
    saved = {k: v for k, v in to_dict(RefineConfig(method=method)).items() if k != "params"} | old
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    cfg = load_refine_config(None, ["seed=3"], run_dir=tmp_path, resume=True)
    assert cfg.method_params() == params and cfg.seed == 3


def test_refinement_envs_follow_the_dynamics_preset() -> None:
    """``dynamics: randomize`` draws each episode's dynamics from the task's preset; a missing preset fails in
    one line before any env steps."""
    from robolearn.wiring import refine_sources

    env = refine_sources(RefineConfig(env_id="robolearn/QuadHover-v0", dynamics="randomize")).make_env(4, 0)
    _, info = env.reset(seed=0)
    mass = info["randomization"]["mass_scale"]
    assert len(set(mass.tolist())) == 4 and all(0.9 <= m <= 1.1 for m in mass)
    env.close()
    with pytest.raises(ConfigError, match="no preset 'windy'") as err:
        refine_sources(RefineConfig(env_id="robolearn/QuadHover-v0", dynamics="windy"))
    assert "\n" not in str(err.value)
