"""The base of every robolearn MuJoCo task.

A task builds a :class:`mujoco.MjSpec`, and this base owns the model/data, action validation and
clipping, the physics sub-stepping, reward terms and offscreen rendering. ``step`` is split in three
so that a batched env can run the C physics of many envs in parallel threads (``mj_step`` releases the
GIL) while the Python parts stay serial:

* :meth:`MujocoTaskEnv.pre_step` validates and clips the action and sets ``data.ctrl`` (Python);
* :meth:`MujocoTaskEnv.physics_step` advances ``n_substeps`` physics steps (C, no GIL); a task whose
  own code runs at every physics step also offers it as a compiled job
  (:meth:`MujocoTaskEnv.physics_job`) that a batched env runs for a whole slice of envs in one call;
* :meth:`MujocoTaskEnv.post_step` computes observation, reward terms and episode ends (Python).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.core.config import from_dict
from robolearn.core.protocols import Feature
from robolearn.sim.pixels import PixelConfig, PixelRenderer
from robolearn.sim.randomization import DomainRandomizer, RandomizationConfig
from robolearn.sim.visual import VisualConfig, VisualRandomizer


class ActionError(ValueError):
    """An action of the wrong shape, or with NaN/inf."""


@dataclass
class RewardTerms:
    """Named reward terms of one step and their scales; the reward is ``sum(scale * term)``."""

    values: dict[str, float]
    scales: dict[str, float]

    def total(self) -> float:
        return float(sum(self.scales.get(k, 0.0) * v for k, v in self.values.items()))

    def info(self) -> dict[str, float]:
        """``{"reward/<term>": value}``, as logged."""
        return {f"reward/{k}": float(v) for k, v in self.values.items()}


def clip_to_box(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, Any]:
    """``actions`` ``(action_dim,)`` or ``(n, action_dim)`` clipped into ``[low, high]`` (np.clip without its
    wrapper's overhead) and how many entries of each action were clipped (an int, or ``(n,)``)."""
    clipped = np.minimum(np.maximum(actions, low), high)
    changed = clipped != actions
    # one action: count_nonzero without an axis takes its fast path (~2 us less per env step)
    return clipped, np.count_nonzero(changed) if changed.ndim == 1 else np.count_nonzero(changed, axis=-1)


class MujocoTaskEnv(gym.Env):
    """A MuJoCo task with a control rate below the physics rate.

    Subclasses implement :meth:`_build_spec`, :meth:`_reset_task`, :meth:`_apply_action`,
    :meth:`_observation`, :meth:`_reward_terms` and :meth:`_is_success`, and set ``action_space``
    (physical units) and ``observation_space`` (a ``Dict`` of float32 Boxes; ``pixels/<camera>`` uint8
    Boxes are added to it here when ``pixels`` names cameras).

    Every task accepts ``randomization`` (a :class:`RandomizationConfig` or dict: per-episode dynamics,
    latency, observation noise and pushes, reported in the reset ``info["randomization"]``), ``pixels`` (a
    :class:`PixelConfig` or dict) and ``visual`` (a :class:`~robolearn.sim.visual.VisualConfig` or dict: lighting,
    colours, camera poses, image noise and blur, reported in the reset ``info["visual"]``; physics untouched).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    control_hz: float = 20.0
    physics_hz: float = 500.0
    terminate_on_success: bool = True
    reward_scales: dict[str, float] = {"success": 1.0}
    push_body: str = ""
    """Body that randomized pushes act on, unless the randomization config names one."""

    def __init__(
        self, render_mode: str | None = None, camera: str = "front", width: int = 256, height: int = 256,
        randomization: RandomizationConfig | dict[str, Any] | None = None,
        pixels: PixelConfig | dict[str, Any] | None = None,
        visual: VisualConfig | dict[str, Any] | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"physics_hz ({self.physics_hz}) must be a multiple of control_hz ({self.control_hz})")
        self.n_substeps = int(round(ratio))
        spec = self._build_spec()
        spec.option.timestep = 1.0 / self.physics_hz
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.render_mode = render_mode
        self._camera, self._width, self._height = camera, width, height
        self._renderer: mujoco.Renderer | None = None
        self.metadata = {**self.metadata, "render_fps": int(self.control_hz)}
        self._clip_count = 0
        self._elapsed = 0
        self._step_clipped = 0
        self._push_force = 0.0
        self._bounds_of: gym.spaces.Box | None = None
        self._bounds_f64: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
        self._reward_keys: dict[str, str] = {}
        if not isinstance(randomization, RandomizationConfig):
            randomization = from_dict(RandomizationConfig, randomization or {}, "randomization")
        if not isinstance(pixels, PixelConfig):
            pixels = from_dict(PixelConfig, pixels or {}, "pixels")
        if not isinstance(visual, VisualConfig):
            visual = from_dict(VisualConfig, visual or {}, "visual")
        if visual.active and pixels.randomize:
            raise ValueError("pixels.randomize and visual both change the look; drop pixels.randomize (visual "
                             "covers it)")
        self.randomizer = DomainRandomizer(self.model, randomization, self.push_body)
        self.pixels = PixelRenderer(self.model, pixels)
        self.visual = VisualRandomizer(self.model, visual)

    @property
    def observation_space(self) -> gym.spaces.Dict:
        return self._observation_space

    @observation_space.setter
    def observation_space(self, space: gym.spaces.Dict) -> None:
        pixels = getattr(self, "pixels", None)
        extra = pixels.spaces() if pixels is not None else {}
        self._observation_space = gym.spaces.Dict({**space.spaces, **extra})

    # ----------------------------------------------------------------- task hooks
    def _build_spec(self) -> mujoco.MjSpec:
        raise NotImplementedError

    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        """Sample the episode (object poses...) into ``self.data``; return info entries."""
        raise NotImplementedError

    def _apply_action(self, action: np.ndarray) -> None:
        """Map a clipped action to ``data.ctrl`` (runs once per control step)."""
        raise NotImplementedError

    def _observation(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def proprioception_keys(self) -> tuple[str, ...]:
        """Observation keys the robot measures itself (joint encoders, forward kinematics); every other state key
        is the simulator's privileged state (:func:`robolearn.sim.observation_keys.privileged_keys`). Default:
        none declared, so every state key counts as privileged."""
        return ()

    def _reward_terms(self) -> dict[str, float]:
        raise NotImplementedError

    def _is_success(self) -> bool:
        raise NotImplementedError

    def _hold_action(self) -> np.ndarray:
        """The action that keeps the robot as it is (executed while a delayed action is in flight).

        Default: the action closest to zero inside the action space.
        """
        return np.clip(0.0, self.action_space.low, self.action_space.high).astype(np.float64)

    def _is_failure(self) -> bool:
        """A terminal failure (object dropped off the workspace, crash...); False by default."""
        return False

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        sampled = self.randomizer.sample(self.np_random)
        self.pixels.randomize(self.np_random)
        self.visual.reseed(seed)  # its own generator: np_random is drawn from as without it
        look = self.visual.sample()
        info = self._reset_task(self.np_random)
        mujoco.mj_forward(self.model, self.data)
        self._clip_count = 0
        self._elapsed = 0
        return self._observe(), {**info, "is_success": False, "action_clip_count": 0, "randomization": sampled,
                                 "visual": look}

    def step(self, action):
        self.pre_step(action)
        self.physics_step()
        return self.post_step()

    def pre_step(self, action: Any) -> None:
        """Validate (shape, finiteness), clip to the action space, and set the controls."""
        act = np.asarray(action, dtype=np.float64)
        space = self.action_space
        expected = space.shape
        if act.shape != expected:
            if act.size == int(np.prod(expected)) and act.squeeze().shape == expected:
                act = act.reshape(expected)
            else:
                raise ActionError(f"{self.spec_id}: action shape {act.shape}, expected {expected}")
        if not np.isfinite(act).all():
            raise ActionError(f"{self.spec_id}: action contains NaN or inf: {act.tolist()}")
        clipped, n_clipped = clip_to_box(act, *self._bounds(space))
        self.apply_clipped(clipped, int(n_clipped))

    def apply_clipped(self, clipped: np.ndarray, n_clipped: int) -> None:
        """The rest of :meth:`pre_step`, for an action already checked and clipped: ``clipped``
        ``(action_dim,)`` float64 inside the action space, ``n_clipped`` of its entries clipped. Batched envs
        check and clip every env's action in one array operation and call this."""
        self._step_clipped = n_clipped
        self._clip_count += n_clipped
        self._apply_action(self.randomizer.delay(clipped, self._hold_action))
        self._push_force = self.randomizer.push(self.data, self.np_random)

    def _bounds(self, space: gym.spaces.Box) -> tuple[np.ndarray, np.ndarray]:
        """The action space's ``low`` and ``high`` as float64, cached per space object.

        Clipping a float64 action against float32 bounds converts the bounds on every call; the
        float64 copies hold the same values.
        """
        if self._bounds_of is not space:
            self._bounds_f64 = (space.low.astype(np.float64), space.high.astype(np.float64))
            self._bounds_of = space
        return self._bounds_f64

    def physics_step(self) -> None:
        """Advance ``n_substeps`` physics steps; releases the GIL."""
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)

    def physics_job(self) -> tuple[Callable[[list[tuple]], list[Any]], tuple] | None:
        """This step's physics as a compiled job ``(run_many, args)`` that batched envs run several at a time
        with the GIL released once, then hand each result to :meth:`finish_physics`; None (here) when
        :meth:`physics_step` is the way. Tasks whose Python runs around every physics step (the quadrotor)
        return one."""
        return None

    def finish_physics(self, result: Any) -> None:
        """Take the result of the job :meth:`physics_job` returned."""

    def post_step(self):
        self._elapsed += 1
        obs = self._observe()
        success = self._is_success()
        values = self._reward_terms()
        values["success"] = float(success)
        terminated = (success and self.terminate_on_success) or self._is_failure()
        info = {
            "is_success": success,
            "action_clipped": self._step_clipped,
            "action_clip_count": self._clip_count,
            "push_force": self._push_force,
        }
        # What RewardTerms(values, scales).total() and .info() compute, without building the object.
        scales, keys, total = self.reward_scales, self._reward_keys, 0
        for name, value in values.items():
            total += scales.get(name, 0.0) * value
            key = keys.get(name)
            if key is None:
                key = keys[name] = f"reward/{name}"
            info[key] = float(value)
        return obs, float(total), bool(terminated), False, info

    def _observe(self) -> dict[str, np.ndarray]:
        """The task observation with randomized noise/bias, plus camera frames."""
        obs = self._observation()
        self.randomizer.perturb_observation(obs, self.np_random)
        obs.update(self.visual.process(self.pixels.render(self.data)))
        return obs

    # ----------------------------------------------------------------- rendering
    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.render_camera(self._camera, self._width, self._height)

    def render_camera(self, camera: str, width: int, height: int) -> np.ndarray:
        """An RGB frame ``(height, width, 3)`` uint8 from a named camera, rendered offscreen."""
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = mujoco.Renderer(self.model, height, width)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        self.pixels.close()
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ----------------------------------------------------------------- metadata
    @property
    def spec_id(self) -> str:
        return self.spec.id if self.spec is not None else type(self).__name__

    def features(self) -> dict[str, dict[str, Feature]]:
        """Observation and action features (shapes, units) for dataset metadata and robots."""
        raise NotImplementedError


def box(shape: tuple[int, ...], low: float = -np.inf, high: float = np.inf) -> gym.spaces.Box:
    """A float32 Box."""
    return gym.spaces.Box(low=low, high=high, shape=shape, dtype=np.float32)
