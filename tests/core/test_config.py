"""Typed configs: YAML presets, dotted overrides, and errors that name the key, file and allowed keys."""

from dataclasses import dataclass, field

import pytest

from robolearn.core.config import ConfigError, apply_overrides, describe, field_docs, load_config, save_config


@dataclass
class Inner:
    num_envs: int = 1
    """How many envs."""
    rate: float = 20.0
    """Control rate (Hz)."""


@dataclass
class Outer:
    env: Inner = field(default_factory=Inner)
    name: str = "x"
    """A name."""
    tags: list[str] = field(default_factory=list)
    scale: float | None = None


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "preset.yaml"
    path.write_text("env:\n  num_envs: 4\nname: lift\ntags: [a, b]\n")
    cfg = load_config(Outer, path, ["env.num_envs=16", "env.rate=10", "scale=0.5"])
    assert cfg.env.num_envs == 16 and cfg.env.rate == 10.0 and cfg.name == "lift"
    assert cfg.tags == ["a", "b"] and cfg.scale == 0.5


def test_unknown_key_names_key_file_and_allowed_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("env:\n  num_env: 4\n")
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    msg = str(err.value)
    assert "env.num_env" in msg and str(path) in msg and "num_envs" in msg and "rate" in msg


def test_wrong_type_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("env:\n  num_envs: four\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: env.num_envs: expected int"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="expected bool|expected int"):
        apply_overrides(Outer(), ["env.num_envs=true"])


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides(Outer(), ["env.num_envs"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_resolved_config_round_trips(tmp_path):
    cfg = apply_overrides(Outer(), ["env.num_envs=3", "tags=[x]"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(Outer, path) == cfg


def test_field_docs_feed_help():
    assert field_docs(Inner) == {"num_envs": "How many envs.", "rate": "Control rate (Hz)."}
    assert any("env.num_envs (int, default 1): How many envs." in line for line in describe(Outer))


def test_shipped_presets_load():
    """Every YAML preset under configs/ for a command of this package loads into its dataclass."""
    from pathlib import Path

    from robolearn.cli.demo import DemoConfig
    from robolearn.rollout import RolloutConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    for path in sorted((root / "rollout").glob("*.yaml")):
        assert load_config(RolloutConfig, path).episodes > 0
    assert load_config(DemoConfig, root / "demo.yaml").tasks


def test_exponent_floats_without_a_dot():
    """YAML 1.1 reads 1e-4 as a string; float fields accept it, other strings still fail."""
    cfg = apply_overrides(Outer(), ["env.rate=1e-4"])
    assert cfg.env.rate == 1e-4
    with pytest.raises(ConfigError, match="expected float"):
        apply_overrides(Outer(), ["env.rate=fast"])
