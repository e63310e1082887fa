"""Property-based tests of config loading against the real config dataclasses (issue 25, item 9).

Random YAML files (well-formed mappings near the real keys, and arbitrary text) and random dotted
``key=value`` overrides: loading either gives a config or raises ``ConfigError``, nothing else.
"""

from __future__ import annotations

import dataclasses
import importlib
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robolearn.core.config import ConfigError, apply_overrides, load_config, to_dict

CONFIGS = [
    ("robolearn.train", "TrainConfig"), ("robolearn.refine.config", "RefineConfig"),
    ("robolearn.hil.config", "HILConfig"), ("robolearn.hil.reward_classifier", "RewardClassifierConfig"),
    ("robolearn.collect", "CollectConfig"), ("robolearn.rollout", "RolloutConfig"),
    ("robolearn.teleop.record", "TeleopConfig"), ("robolearn.pipeline.config", "PipelineConfig"),
    ("robolearn.cli.demo", "DemoConfig"), ("robolearn.ros_nodes.launcher", "DeployConfig"),
]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
               database=None)
"""Derandomized (the same examples on every run, so CI is reproducible) and writing no example database."""


def config_classes() -> list[type]:
    found = []
    for module_name, name in CONFIGS:
        try:
            found.append(getattr(importlib.import_module(module_name), name))
        except ImportError:  # an optional extra (ROS) that is not installed
            continue
    return found


def dotted_keys(cls: type, prefix: str = "") -> list[str]:
    """Every field of ``cls`` as ``a.b.c`` (nested dataclasses expanded)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(dotted_keys(hints[f.name], f"{prefix}{f.name}."))
    return keys


CLASSES = config_classes()
scalars = (st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -(10**400), 2**63])
           | st.floats() | st.text(max_size=12) | st.sampled_from(["off", "on", "yes", "no", "1e-4", "null", "~"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
override_text = st.text(max_size=16) | st.sampled_from(
    ["1" + "0" * 400, "off", "[1, 2", "{a: 1}", "[]", "1e999", ".nan", "!!python/object:os.system", "&a [*a]", "- x",
     ": ", "'off'"])


def nested(keys: list[str], chosen: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in chosen:
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            node = nxt
        else:
            node[parts[-1]] = value
    return data


def load_text(cls: type, text: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "preset.yaml"
        path.write_text(text)
        return load_config(cls, path)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_random_yaml_mappings_only_raise_config_error(cls):
    keys = dotted_keys(cls)

    @FUZZ
    @given(st.lists(st.tuples(st.sampled_from(keys) | st.text(max_size=8), values), max_size=5))
    def check(chosen):
        text = yaml.safe_dump(nested(keys, chosen))
        try:
            cfg = load_text(cls, text)
        except ConfigError:
            return
        yaml.safe_dump(to_dict(cfg))  # a config that loaded can be saved again

    check()


@pytest.mark.parametrize("cls", CLASSES[:4], ids=lambda c: c.__name__)
def test_arbitrary_yaml_text_only_raises_config_error(cls):
    @FUZZ
    @given(st.text(max_size=80) | st.sampled_from(["!!python/object/apply:os.system ['true']", "- 1\n- 2", "a: &x [*x]",
                                                   "{", "steps: !!binary AAAA", "? [a]\n: 1"]))
    def check(text):
        try:
            load_text(cls, text)
        except ConfigError:
            pass

    check()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_random_overrides_only_raise_config_error(cls):
    keys = dotted_keys(cls)
    try:
        base = load_config(cls)
    except ConfigError:  # a class with required fields: its presets are fuzzed above
        return

    @FUZZ
    @given(st.lists(st.tuples(st.sampled_from(keys) | st.text(max_size=8), override_text), max_size=4))
    def check(pairs):
        try:
            apply_overrides(base, [f"{k}={v}" for k, v in pairs])
        except ConfigError:
            pass

    check()


@dataclasses.dataclass
class Typed:
    name: str = "a"
    flag: bool = False
    count: int = 1


@FUZZ
@given(st.text(min_size=1, max_size=16).filter(lambda s: "\n" not in s and "\r" not in s))
def test_a_str_field_keeps_the_text_it_was_given(text):
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        parsed = text
    cfg = apply_overrides(Typed(), [f"name={text}"])
    expected = "" if not text.strip() else parsed if isinstance(parsed, str) else text  # "name=" is empty
    assert cfg.name == expected


def test_yaml_1_1_words_follow_the_field_type():
    cfg = apply_overrides(Typed(), ["name=off", "flag=off", "count=3"])
    assert (cfg.name, cfg.flag, cfg.count) == ("off", False, 3)
    assert apply_overrides(Typed(), ["name=yes", "flag=on"]) == Typed(name="yes", flag=True)
    with pytest.raises(ConfigError, match="count: expected int, got 'off'"):
        apply_overrides(Typed(), ["count=off"])


def test_an_int_too_large_for_a_float_is_a_config_error():
    from robolearn.train import TrainConfig

    with pytest.raises(ConfigError, match="optim.lr: 1000.* is too large for a float"):
        load_text(TrainConfig, "optim:\n  lr: 1" + "0" * 400 + "\n")
