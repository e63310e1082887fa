"""Per-episode domain randomization and the fixed "reality gap" presets.

A :class:`RandomizationConfig` lists ranges ``[low, high]`` sampled uniformly at every reset from the
env's seeded generator, so each episode's parameters are reproducible from the reset seed. A reality
gap preset is the same config with every range collapsed to one held-out value (``low == high``).
Presets live in ``configs/dynamics/<Task>.yaml`` with two sections, ``randomize`` (the training
distribution) and ``real_gap`` (the stand-in for the real robot); see :func:`load_dynamics_preset`.

Everything is off by default (all scales 1, no delay, no noise, no pushes).
"""

from __future__ import annotations

import importlib.util
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import mujoco
import numpy as np
import yaml

from robolearn.core.config import ConfigError, from_dict

P = TypeVar("P")
"""A preset's dataclass (:func:`load_task_preset`)."""


@dataclass
class RandomizationConfig:
    """Ranges ``[low, high]`` sampled once per episode."""

    mass_scale: tuple[float, float] = (1.0, 1.0)
    """Multiplies every body's mass and inertia."""
    friction_scale: tuple[float, float] = (1.0, 1.0)
    """Multiplies every geom's sliding friction."""
    damping_scale: tuple[float, float] = (1.0, 1.0)
    """Multiplies joint damping."""
    armature_scale: tuple[float, float] = (1.0, 1.0)
    """Multiplies joint armature (reflected rotor inertia)."""
    actuator_gain_scale: tuple[float, float] = (1.0, 1.0)
    """Multiplies actuator gains (servo stiffness and damping; thrust constants read it too)."""
    action_delay_steps: tuple[int, int] = (0, 0)
    """Control latency: actions execute this many control steps late (integer range)."""
    obs_noise_std: dict[str, float] = field(default_factory=dict)
    """Per observation key: std of Gaussian noise added every step (feature units)."""
    obs_bias_std: dict[str, float] = field(default_factory=dict)
    """Per observation key: std of a constant bias drawn once per episode (feature units)."""
    push_force: tuple[float, float] = (0.0, 0.0)
    """Magnitude of random horizontal pushes / gusts (N)."""
    push_probability: float = 0.0
    """Chance per control step that a push starts."""
    push_duration_steps: int = 2
    """How many control steps a push lasts."""
    push_body: str = ""
    """Body pushed (empty: the task's default, e.g. the object, torso or airframe)."""


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(low) if low == high else float(rng.uniform(low, high))


class DomainRandomizer:
    """Applies a :class:`RandomizationConfig` to one env's model and data."""

    def __init__(self, model: mujoco.MjModel, cfg: RandomizationConfig, default_push_body: str = ""):
        self.model, self.cfg = model, cfg
        self._nominal = {
            name: getattr(model, name).copy()
            for name in ("body_mass", "body_inertia", "geom_friction", "dof_damping", "dof_armature",
                         "actuator_gainprm", "actuator_biasprm")
        }
        body = cfg.push_body or default_push_body
        self._push_body = model.body(body).id if body else -1
        self.values: dict[str, Any] = {}
        self._bias: dict[str, np.ndarray] = {}
        self._queue: deque[np.ndarray] = deque()
        self._push_left = 0
        self._push = np.zeros(3)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Restore the nominal model, draw this episode's parameters, apply them; returns them."""
        m, cfg, nom = self.model, self.cfg, self._nominal
        for name, value in nom.items():
            getattr(m, name)[:] = value
        v = {k: _uniform(rng, getattr(cfg, k)) for k in
             ("mass_scale", "friction_scale", "damping_scale", "armature_scale", "actuator_gain_scale")}
        m.body_mass[:] = nom["body_mass"] * v["mass_scale"]
        m.body_inertia[:] = nom["body_inertia"] * v["mass_scale"]
        m.geom_friction[:, 0] = nom["geom_friction"][:, 0] * v["friction_scale"]
        m.dof_damping[:] = nom["dof_damping"] * v["damping_scale"]
        m.dof_armature[:] = nom["dof_armature"] * v["armature_scale"]
        m.actuator_gainprm[:, 0] = nom["actuator_gainprm"][:, 0] * v["actuator_gain_scale"]
        m.actuator_biasprm[:, 1:3] = nom["actuator_biasprm"][:, 1:3] * v["actuator_gain_scale"]
        low, high = cfg.action_delay_steps
        v["action_delay_steps"] = int(rng.integers(low, high + 1))
        self._bias = {k: rng.normal(0.0, s) for k, s in cfg.obs_bias_std.items() if s > 0}
        v.update({f"obs_bias/{k}": float(b) for k, b in self._bias.items()})
        self._queue.clear()
        self._push_left = 0
        self.values = v
        return dict(v)

    def delay(self, action: np.ndarray, hold: Callable[[], np.ndarray]) -> np.ndarray:
        """The action to execute now: ``action`` from ``action_delay_steps`` steps ago.

        Until the first action has come through, ``hold()`` (the action that keeps the robot as it is)
        executes, as a real robot keeps its last command while a new one is in flight.
        """
        k = self.values.get("action_delay_steps", 0)
        if k == 0:
            return action
        if not self._queue:
            self._queue.extend([hold()] * k)
        self._queue.append(action.copy())
        return self._queue.popleft()

    def perturb_observation(self, obs: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        """Add the episode bias and per-step noise in place (float keys only)."""
        for key, bias in self._bias.items():
            if key in obs:
                obs[key] += np.float32(bias)
        for key, std in self.cfg.obs_noise_std.items():
            if key in obs and std > 0:
                obs[key] += rng.normal(0.0, std, obs[key].shape).astype(np.float32)

    def push(self, data: mujoco.MjData, rng: np.random.Generator) -> float:
        """Start, continue or end a horizontal push on the push body; returns its force (N)."""
        if self._push_body < 0 or self.cfg.push_force[1] <= 0:
            return 0.0
        if self._push_left == 0 and rng.random() < self.cfg.push_probability:
            angle = rng.uniform(0, 2 * np.pi)
            magnitude = _uniform(rng, self.cfg.push_force)
            self._push = magnitude * np.array([np.cos(angle), np.sin(angle), 0.0])
            self._push_left = self.cfg.push_duration_steps
        force = self._push if self._push_left > 0 else np.zeros(3)
        data.xfrc_applied[self._push_body, :3] = force
        self._push_left = max(0, self._push_left - 1)
        return float(np.linalg.norm(force))


def dynamics_dir() -> Path:
    """Folder of the per-task dynamics presets (``configs/dynamics``)."""
    spec = importlib.util.find_spec("robolearn.configs")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("robolearn.configs (the configs/ folder) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dynamics"


def load_task_preset(cls: type[P], env_id: str, name: str, folder: str = "dynamics", noun: str = "preset",
                     hint: str = "") -> P:
    """Preset ``name`` of ``env_id`` from ``configs/<folder>/<Task>.yaml`` as a ``cls`` (``nominal``: ``cls()``;
    ``-`` in ``name`` read as ``_``); a missing file or preset fails in one line (``noun`` names the preset,
    ``hint`` is appended to the missing-file error)."""
    key = name.replace("-", "_")
    if key == "nominal":
        return cls()
    path = dynamics_dir().parent / folder / f"{env_id.split('/')[-1]}.yaml"
    if not path.is_file():
        raise ConfigError(f"no {folder} presets for {env_id}: {path} does not exist{hint}")
    presets = yaml.safe_load(path.read_text()) or {}
    if key not in presets:
        raise ConfigError(f"{path}: no {noun} '{key}'; available: nominal, {', '.join(presets)}")
    return from_dict(cls, presets[key], f"{path} [{key}]")


def load_dynamics_preset(env_id: str, name: str) -> RandomizationConfig:
    """Preset ``name`` (``randomize`` or ``real_gap``; ``real-gap`` accepted) for ``env_id``."""
    return load_task_preset(RandomizationConfig, env_id, name)
