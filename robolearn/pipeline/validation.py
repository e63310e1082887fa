"""Checks of a pipeline config when its preset loads, before any stage runs.

A mistake that would otherwise surface hours in (a misspelt refinement key at the refine stage, a missing
dynamics preset at evaluation, a ROS 2 stage for a branch that never ran) fails here with a one-line
:class:`~robolearn.core.config.ConfigError` that names the key and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robolearn.core.config import ConfigError, load_config
from robolearn.pipeline.branches import refine_config
from robolearn.pipeline.config import PipelineConfig, RefineStageConfig

MINIMUM: dict[str, int] = {
    "collect.episodes": 1, "collect.num_envs": 1, "train.steps": 1, "eval.episodes": 1, "eval.num_envs": 1,
    "eval.videos": 0, "ros.episodes": 1,
}
"""Dotted key -> its smallest allowed value (``ros.episodes`` only while the ROS stage is enabled)."""

PIPELINE_KEYS = ("method", "env_id", "base", "seed")
"""Refinement settings the pipeline sets for every branch (its method, task, base and seed)."""

"""Refinement methods that steer the base policy's sampling noise: they need a ``diffusion`` base."""


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _check_counts(cfg: PipelineConfig) -> None:
    """Episode, env and step counts are at least their :data:`MINIMUM`."""
    for key, low in MINIMUM.items():
        if key.startswith("ros.") and not cfg.ros.enabled:
            continue
        value = _get(cfg, key)
        if value < low:
            raise ConfigError(f"{key} must be >= {low}, got {value}; set {key} to {low} or more")


def _check_task(cfg: PipelineConfig) -> None:
    """The task is registered, takes the pipeline's task settings (and each ``eval.tasks`` condition's), and has
    every observation key a trained base reads."""
    from robolearn.sim.registry import TASKS, gym_make

    if cfg.env_id not in TASKS:
        raise ConfigError(f"env_id: unknown task '{cfg.env_id}'; choose from {', '.join(TASKS)}")
    keys: set[str] = set()
    conditions = [("task", cfg.task), *((f"eval.tasks.{n}", {**cfg.task, **t}) for n, t in cfg.eval.tasks.items())]
    for key, settings in conditions:
        try:
            env = gym_make(cfg.env_id, **settings)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{key}: {cfg.env_id} refuses {settings} ({err}); fix or remove the setting") from None
        keys = keys or set(env.observation_space.spaces)  # the pipeline task's observations
        env.close()
    for key in cfg.train.policy.obs_keys if cfg.trains_base else ():
        camera = key.removeprefix("pixels/")
        if key != camera and camera not in cfg.collect.cameras:
            raise ConfigError(f"train.policy.obs_keys: '{key}' is not recorded; add '{camera}' to collect.cameras")
        if key == camera and key not in keys:
            raise ConfigError(f"train.policy.obs_keys: {cfg.env_id} has no observation '{key}'; "
                              f"choose from {', '.join(sorted(keys))}")


def _check_base(cfg: PipelineConfig) -> None:
    """``base`` is ``train`` or a scripted policy the task has (``expert[:noise=X]``, ``zero``, ``random``)."""
    from robolearn.policy_factory import NAMED_POLICIES, load_policy

    if cfg.trains_base:
        return
    choices = f"set base to train or one of {', '.join(NAMED_POLICIES)} (with :noise=X)"
    if cfg.base.partition(":")[0] not in NAMED_POLICIES:
        raise ConfigError(f"base: unknown policy '{cfg.base}'; {choices}")
    try:
        load_policy(cfg.base, cfg.env_id, seed=cfg.seed)
    except ValueError as err:
        raise ConfigError(f"base: {err}; {choices}") from None


def _check_dynamics(cfg: PipelineConfig) -> None:
    """Every evaluation dynamics preset exists for the task, once."""
    from robolearn.sim.randomization import load_dynamics_preset

    if not cfg.eval.dynamics:
        raise ConfigError("eval.dynamics is empty; list at least [nominal]")
    for i, name in enumerate(cfg.eval.dynamics):
        if name in cfg.eval.dynamics[:i]:
            raise ConfigError(f"eval.dynamics[{i}]: '{name}' is listed twice; list each preset once")
        try:
            load_dynamics_preset(cfg.env_id, name)
        except ConfigError as err:
            raise ConfigError(f"eval.dynamics[{i}]: {err}") from None


def _check_visual(cfg: PipelineConfig) -> None:
    """Every ``eval.visual`` preset exists for the task, once, and the base reads a camera."""
    from robolearn.sim.visual import load_visual_preset

    for i, name in enumerate(cfg.eval.visual):
        key = f"eval.visual[{i}]"
        if name in cfg.eval.visual[:i]:
            raise ConfigError(f"{key}: '{name}' is listed twice; list each preset once")
        if not any(k.startswith("pixels/") for k in cfg.train.policy.obs_keys) or not cfg.trains_base:
            raise ConfigError(f"{key}: a visual preset changes only what cameras see, and the base reads no "
                              f"pixels/<camera> key; add cameras to train.policy.obs_keys or remove eval.visual")
        try:
            load_visual_preset(cfg.env_id, name)
        except ConfigError as err:
            raise ConfigError(f"{key}: {err}") from None


def _check_privileged(cfg: PipelineConfig) -> None:
    """With ``privileged: false`` the base and every branch read proprioception and cameras only."""
    if cfg.privileged:
        return
    from robolearn.sim.observation_keys import privileged_keys
    from robolearn.sim.registry import gym_make

    env = gym_make(cfg.env_id, **cfg.task)
    proprio = env.unwrapped.proprioception_keys()
    env.close()
    fix = f"read proprioception ({', '.join(proprio) or 'none declared'}) and pixels/<camera> keys only"
    if not cfg.trains_base:
        raise ConfigError(f"privileged: a scripted base (base: {cfg.base}) reads the simulator's state; "
                          f"set privileged=true or base=train")
    if not cfg.train.policy.obs_keys:
        raise ConfigError(f"train.policy.obs_keys is empty (every key, privileged state included, with "
                          f"privileged: false); list the keys: {fix}")
    inputs = [("train.policy.obs_keys", cfg.train.policy.obs_keys)]
    inputs += [(f"refine[{i}].settings.obs_keys", refine_config(cfg, b).obs_keys) for i, b in enumerate(cfg.refine)]
    for key, names in inputs:
        bad = privileged_keys(names, proprio) if names else ["every key"]
        if bad:
            raise ConfigError(f"{key}: {', '.join(bad)} is privileged simulator state (privileged: false); {fix}")


def _check_branch(cfg: PipelineConfig, i: int, branch: RefineStageConfig, methods: Mapping[str, Any]) -> None:
    """One refinement branch: a known method, run once, on a base it can refine, with valid settings."""
    key = f"refine[{i}]"
    if branch.method not in methods:
        raise ConfigError(f"{key}.method: unknown refinement method '{branch.method}'; "
                          f"choose from {', '.join(methods)}")
    if [b.method for b in cfg.refine[:i]].count(branch.method):
        raise ConfigError(f"{key}.method: a second '{branch.method}' branch; a branch is named by its method, "
                          f"so give each method one branch")
    owned = [k for k in PIPELINE_KEYS if k in branch.settings]
    if owned:
        raise ConfigError(f"{key}.settings.{owned[0]}: the pipeline sets it (its {owned[0]}); remove the key")
    if methods[branch.method].needs_generative_base and not cfg.trains_base:
        raise ConfigError(f"{key}.method: {branch.method} steers a diffusion base's noise, but the base is scripted "
                          f"(base: {cfg.base}); set base=train with train.policy.type=diffusion or drop the branch")
    if methods[branch.method].needs_generative_base and cfg.train.policy.type != "diffusion":
        raise ConfigError(f"{key}.method: {branch.method} steers a diffusion base's noise, but "
                          f"train.policy.type is '{cfg.train.policy.type}'; set train.policy.type=diffusion "
                          f"or drop the branch")
    try:
        refine_config(cfg, branch).validate()
    except ValueError as err:  # ConfigError included: an unknown or mistyped key
        raise ConfigError(f"{key}.settings: {err}") from None


def _check_branches(cfg: PipelineConfig) -> None:
    """Every refinement branch (:func:`_check_branch`)."""
    from robolearn.refine.methods import METHODS

    for i, branch in enumerate(cfg.refine):
        _check_branch(cfg, i, branch, METHODS)


def _check_ros(cfg: PipelineConfig) -> None:
    """The ROS 2 stage deploys a policy the pipeline makes, on a robot the ROS 2 nodes can drive."""
    if not cfg.ros.enabled:
        return
    from robolearn.ros_nodes.embodiments import EMBODIMENTS
    from robolearn.sim.registry import task

    policies = [b.method for b in cfg.refine] + ["base"]
    if cfg.ros.policy not in policies:
        raise ConfigError(f"ros.policy: '{cfg.ros.policy}' is not a policy this pipeline makes; choose from "
                          f"{', '.join(policies)}, or set ros.enabled=false")
    embodiment = task(cfg.env_id).embodiment
    if embodiment not in EMBODIMENTS:
        raise ConfigError(f"ros.enabled: the ROS 2 nodes cannot drive {cfg.env_id} (embodiment '{embodiment}'; "
                          f"they drive {', '.join(EMBODIMENTS)}); set ros.enabled=false")
    _check_safety_limits(cfg.ros.safety)


def _check_safety_limits(limits: Mapping[str, Any]) -> None:
    """``ros.safety`` names safety node limits (``limits.<SafetyConfig field>``), caught here rather than when the
    ROS stage starts, after the refinement branches."""
    from dataclasses import fields

    from robolearn.ros_nodes.safety import SafetyConfig

    known = {f"limits.{f.name}" for f in fields(SafetyConfig)}
    bad = sorted(k for k in limits if k not in known)
    if bad:
        raise ConfigError(f"ros.safety: {', '.join(bad)} is not a safety node limit; use limits.<name> with a "
                          f"name from {', '.join(sorted(k.removeprefix('limits.') for k in known))}")


def _check_devices(cfg: PipelineConfig) -> None:
    """The torch devices are spelt right and this machine has them (a branch's ``settings.device`` is checked
    with its branch)."""
    from robolearn.rl.devices import resolve_device

    for key, value in (("train.device", cfg.train.device), ("eval.device", cfg.eval.device)):
        try:
            resolve_device(value)
        except ValueError as err:
            raise ConfigError(f"{key}: {err}") from None


CHECKS = (_check_counts, _check_devices, _check_base, _check_task, _check_dynamics, _check_visual, _check_branches,
          _check_privileged, _check_ros)
"""The checks, cheapest first."""


def validate(cfg: PipelineConfig, source: str = "pipeline config") -> PipelineConfig:
    """Return ``cfg`` when every check passes; else raise a :class:`ConfigError` prefixed with ``source``."""
    for check in CHECKS:
        try:
            check(cfg)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_pipeline_config(path: str | Path | None, overrides: list[str] | None = None) -> PipelineConfig:
    """A pipeline preset with dotted overrides applied, validated (:func:`validate`)."""
    cfg = load_config(PipelineConfig, path, overrides)
    return validate(cfg, str(path) if path else "pipeline config")
