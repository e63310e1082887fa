"""Shared parts of the quadrotor tasks: config, vehicle dynamics hooks, action mapping, observation.

Action (``action_mode="rates"``, default), float32 ``(4,)`` in physical units: collective thrust ``T``
(N, in ``[0, 4 f_max]`` = ``[0, 0.596]`` for the Crazyflie; hover is 0.265) and body-rate commands
``p, q, r`` (rad/s about body x, y, z, at most ``max_rate_rp`` / ``max_rate_yaw``). The
:class:`~robolearn.sim.quadrotor.rate_controller.RateController` tracks them at the physics rate.
With ``action_mode="motors"`` the action is the four rotor thrust commands (N, each in ``[0, f_max]``),
sent to the motors directly, in the order front-right, back-right, back-left, front-left.

Observation, a dict of float32 arrays: ``position (3,)`` m and ``velocity (3,)`` m/s in the world frame,
``attitude (4,)`` quaternion (w, x, y, z) body-to-world, ``body_rates (3,)`` rad/s in the body frame,
then the task's target features.

Dynamics hooks for domain randomization: :attr:`QuadTaskEnv.dynamics` (mass, inertia, thrust constant
scale, motor time constant, torque ratio, drag) and :attr:`QuadTaskEnv.wind` (a
:class:`~robolearn.sim.quadrotor.wind.WindModel`) are read at every reset; overwrite them between
episodes to perturb the vehicle. The controllers keep using the nominal figures, as on hardware.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.core.config import from_dict, to_dict
from robolearn.core.protocols import Feature
from robolearn.sim.mujoco_env import MujocoTaskEnv, box
from robolearn.sim.quadrotor.model import BODY, CRAZYFLIE, MOTORS, QuadrotorParams, add_quadrotor, build_arena
from robolearn.sim.quadrotor.rate_controller import RateController
from robolearn.sim.quadrotor.substeps import NativeSubsteps, native_module, step_with_drag
from robolearn.sim.quadrotor.wind import WindModel, WindState


@dataclass
class QuadTaskConfig:
    """Settings shared by the quadrotor tasks (``gymnasium.make(id, config=...)`` or keyword arguments)."""

    action_mode: Literal["rates", "motors"] = "rates"
    """``rates``: collective thrust (N) + body rates (rad/s); ``motors``: four rotor thrusts (N)."""
    control_hz: float = 50.0
    """Policy rate (Hz)."""
    physics_hz: float = 500.0
    """Physics and inner rate-loop rate (Hz); a multiple of control_hz."""
    max_rate_rp: float = 10.0
    """Largest roll/pitch rate command (rad/s)."""
    max_rate_yaw: float = 5.0
    """Largest yaw rate command (rad/s)."""
    rate_gains: tuple[float, float, float] = (20.0, 20.0, 10.0)
    """Rate-loop bandwidths about body x, y, z (1/s)."""
    wind_mean_max: float = 0.0
    """Largest steady wind speed (m/s)."""
    wind_gust_max: float = 0.0
    """Largest gust amplitude (m/s)."""
    wind_gust_rate: float = 0.5
    """Mean gusts per second."""
    arena_half_size: float = 5.0
    """Leaving ``|x|, |y| <= arena_half_size`` or ``z <= 2 * arena_half_size`` (m) is a crash."""
    reward_scales: dict[str, float] = field(default_factory=dict)
    """Scale of each named reward term (the task's defaults when empty)."""
    terminate_on_success: bool | None = None
    """End the episode on success (the task's default when None)."""


@dataclass
class QuadDynamics:
    """The simulated vehicle of one episode (the controllers assume :data:`CRAZYFLIE` throughout)."""

    mass: float
    """kg."""
    inertia: tuple[float, float, float]
    """Principal moments (kg m^2)."""
    thrust_gain: float = 1.0
    """Actual over commanded rotor thrust: a scale of the thrust constant."""
    motor_tau: float = CRAZYFLIE.motor_tau
    """Motor time constant (s)."""
    torque_ratio: float = CRAZYFLIE.torque_ratio
    """Rotor reaction torque per unit thrust (m)."""
    drag: tuple[float, float, float] = tuple(CRAZYFLIE.linear_drag())
    """Linear drag (N per m/s) in world x, y, z."""

    @classmethod
    def nominal(cls, params: QuadrotorParams = CRAZYFLIE) -> QuadDynamics:
        return cls(mass=params.mass, inertia=tuple(params.inertia), motor_tau=params.motor_tau,
                   torque_ratio=params.torque_ratio, drag=tuple(float(x) for x in params.linear_drag()))


class QuadTaskEnv(MujocoTaskEnv):
    """A quadrotor task; subclasses add the scene (:meth:`_add_scene`) and the task logic."""

    config_class: type[QuadTaskConfig] = QuadTaskConfig
    default_reward_scales: dict[str, float] = {"success": 1.0}
    default_terminate_on_success: bool = True
    push_body = BODY
    native_substeps: bool = True
    """Run the physics-rate loop compiled where it is built; False runs the Python reference (same results)."""

    def __init__(self, config: QuadTaskConfig | dict[str, Any] | None = None, render_mode: str | None = None,
                 camera: str = "track", width: int = 256, height: int = 256, randomization: Any = None,
                 pixels: Any = None, visual: Any = None,
                 **overrides: Any):
        cls = self.config_class
        cfg = config if isinstance(config, cls) else from_dict(cls, dict(config or {}), f"{type(self).__name__}")
        if overrides:
            cfg = from_dict(cls, {**to_dict(cfg), **overrides}, f"{type(self).__name__} kwargs")
        self.cfg = cfg
        self.params = CRAZYFLIE
        self.control_hz, self.physics_hz = cfg.control_hz, cfg.physics_hz
        self.reward_scales = dict(cfg.reward_scales or self.default_reward_scales)
        self.terminate_on_success = (self.default_terminate_on_success if cfg.terminate_on_success is None
                                     else cfg.terminate_on_success)
        self.dynamics = QuadDynamics.nominal(self.params)
        self.wind = WindModel(cfg.wind_mean_max, cfg.wind_gust_max, cfg.wind_gust_rate)
        super().__init__(render_mode=render_mode, camera=camera, width=width, height=height,
                         randomization=randomization, pixels=pixels, visual=visual)
        m = self.model
        self._body = m.body(BODY).id
        self._motors = np.array([m.actuator(n).id for n in MOTORS])
        if m.nu != 4 or list(self._motors) != [0, 1, 2, 3]:
            raise ValueError(f"{type(self).__name__}: the scene must have exactly the four motors as actuators")
        self._compiled = (m.body_mass[self._body], m.body_inertia[self._body].copy(), m.actuator_gainprm[:4, 0].copy())
        self.dt = 1.0 / self.control_hz
        self.rate_controller = RateController(self.params, cfg.rate_gains)
        f_max, t_max = self.params.max_motor_thrust, 4 * self.params.max_motor_thrust
        if cfg.action_mode == "rates":
            r, y = cfg.max_rate_rp, cfg.max_rate_yaw
            low, high = [0.0, -r, -r, -y], [t_max, r, r, y]
        else:
            low, high = [0.0] * 4, [f_max] * 4
        self.action_space = gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)
        self.observation_space = gym.spaces.Dict({k: box(s) for k, s in self._observation_shapes().items()})
        self._thrust_cmd = self.params.hover_thrust
        self._rate_cmd = (0.0, 0.0, 0.0)
        self._drag = np.asarray(self.dynamics.drag, dtype=np.float64)
        self._drag_list = self._drag.tolist()
        self._wind_vel = np.zeros(3)
        self._wind_state: WindState | None = None
        self._applied_drag = (0.0, 0.0, 0.0)
        self._native: NativeSubsteps | None = None
        self._native_controller: RateController | None = None

    # ----------------------------------------------------------------- scene
    def _build_spec(self) -> mujoco.MjSpec:
        spec = build_arena(self.cfg.arena_half_size)
        add_quadrotor(spec, self.params)
        self._add_scene(spec)
        return spec

    def _add_scene(self, spec: mujoco.MjSpec) -> None:
        """Add the task's bodies (targets, gates)."""

    def _task_observation_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"position": (3,), "velocity": (3,), "attitude": (4,), "body_rates": (3,),
                **self._task_observation_shapes()}

    # ----------------------------------------------------------------- vehicle
    def apply_dynamics(self) -> None:
        """Write :attr:`dynamics` into the model (called at every reset, after the generic randomizer).

        The generic :class:`~robolearn.sim.randomization.DomainRandomizer` scales the compiled mass,
        inertia and actuator gain; that scale is kept and multiplies the values of :attr:`dynamics`.
        """
        dyn, m, b = self.dynamics, self.model, self._body
        if dyn.mass <= 0 or min(dyn.inertia) <= 0 or dyn.thrust_gain <= 0 or dyn.motor_tau <= 0:
            raise ValueError(f"quadrotor dynamics must be positive, got {dyn}")
        mass0, inertia0, gain0 = self._compiled
        m.body_mass[b] = dyn.mass * (m.body_mass[b] / mass0)
        m.body_inertia[b] = np.asarray(dyn.inertia) * (m.body_inertia[b] / inertia0)
        m.actuator_gainprm[:4, 0] = dyn.thrust_gain * (m.actuator_gainprm[:4, 0] / gain0)
        m.actuator_dynprm[:4, 0] = dyn.motor_tau
        m.actuator_gear[:4, 5] = np.sign(m.actuator_gear[:4, 5]) * dyn.torque_ratio
        self._drag = np.asarray(dyn.drag, dtype=np.float64)
        self._drag_list = self._drag.tolist()

    def reset_vehicle(self, rng: np.random.Generator, pos: np.ndarray, quat: np.ndarray,
                      vel: np.ndarray | None = None) -> dict[str, Any]:
        """Place the vehicle at ``pos`` (3,) m with ``quat`` (4,) wxyz, rotors spinning at hover thrust."""
        d = self.data
        self.apply_dynamics()
        d.qpos[0:3], d.qpos[3:7] = pos, quat
        d.qvel[0:3] = 0.0 if vel is None else vel
        hover = self.params.hover_thrust / 4.0
        d.ctrl[:] = hover
        d.act[:] = hover  # filter state of the motor lag: the rotors start at hover thrust
        self._thrust_cmd, self._rate_cmd = self.params.hover_thrust, (0.0, 0.0, 0.0)
        self._wind_state = WindState.sample(self.wind, rng)
        self._wind_vel = self._wind_state.mean.copy()
        self._applied_drag = (0.0, 0.0, 0.0)  # mj_resetData cleared xfrc_applied
        return {"dynamics": dataclasses.asdict(self.dynamics), "wind_mean": self._wind_state.mean.copy()}

    def _apply_action(self, action: np.ndarray) -> None:
        if self.cfg.action_mode == "rates":
            self._thrust_cmd = float(action[0])
            self._rate_cmd = tuple(action[1:4].tolist())
        else:
            self.data.ctrl[:] = action

    def _hold_action(self) -> np.ndarray:
        """Hover thrust and zero rates (or hover thrust on every rotor): held while a delayed action is in flight."""
        hover = self.params.hover_thrust
        if self.cfg.action_mode == "rates":
            return np.array([hover, 0.0, 0.0, 0.0])
        return np.full(4, hover / 4.0)

    def physics_step(self) -> None:
        """``n_substeps`` physics steps, each with the rate loop (rates mode) and the wind drag.

        Both feed back the velocities of each physics step, so they run around every ``mj_step``: in C
        with the GIL released where the compiled loop is built, else in Python (the same results,
        :mod:`robolearn.sim.quadrotor.substeps`). A push set by the randomizer in ``pre_step`` is kept and
        the drag added to it.
        """
        m, d = self.model, self.data
        native = self._native_loop()
        force, push, drag, wind = self._physics_inputs()
        if native is not None:
            applied = native(self.n_substeps, self._thrust_cmd, self._rate_cmd, push, drag, wind)
        elif self.cfg.action_mode == "rates":
            applied = self.rate_controller.step_physics(m, d, self.n_substeps, self._thrust_cmd, self._rate_cmd,
                                                        force, push, drag, wind)
        else:
            applied = step_with_drag(m, d, self.n_substeps, force, push, drag, wind)
        self.finish_physics(applied)

    def physics_job(self) -> tuple[Callable[[list[tuple]], list[Any]], tuple] | None:
        """This control step's physics as a compiled job ``(run_many, args)``, or None where it is not built.

        ``run_many([args, ...])`` runs the jobs of several envs with the GIL released once and returns
        their results, each for :meth:`finish_physics`; the batched envs run one call per thread.
        Advances the wind as :meth:`physics_step` does.
        """
        native = self._native_loop()
        if native is None:
            return None
        _, push, drag, wind = self._physics_inputs()
        return native.run_many, native.arguments(self.n_substeps, self._thrust_cmd, self._rate_cmd, push, drag,
                                                 wind)

    def finish_physics(self, applied: Sequence[float]) -> None:
        """Record the last drag force (3 floats, N) of the physics just run (``pre_step`` of the next step
        subtracts it to find the randomizer's push)."""
        self._applied_drag = tuple(applied)

    def _physics_inputs(self) -> tuple[np.ndarray, list[float], list[float], list[float]]:
        """Advance the wind one control step; returns the vehicle's ``xfrc_applied`` row ``(6,)`` and the
        push (3,) N left there by the randomizer, the drag (3,) N/(m/s) and the wind (3,) m/s as floats."""
        if self._wind_state is not None:
            self._wind_vel = self._wind_state.step(self.wind, self.dt)
        force = self.data.xfrc_applied[self._body]
        fx, fy, fz = force[:3].tolist()
        ax, ay, az = self._applied_drag
        push = [fx - ax, fy - ay, fz - az]  # what the randomizer's push left there
        return force, push, self._drag_list, self._wind_vel.tolist()

    def _native_loop(self) -> NativeSubsteps | None:
        """The compiled loop bound to the current model, data and rate controller (bound again if one was
        replaced), or None where it is not built."""
        if not self.native_substeps:
            return None
        loop = self._native
        if (loop is not None and loop.data is self.data and loop.model is self.model
                and self._native_controller is self.rate_controller):
            return loop
        if native_module() is None:
            return None
        consts = self.rate_controller.native_constants() if self.cfg.action_mode == "rates" else None
        self._native = NativeSubsteps(self.model, self.data, self._body, consts)
        self._native_controller = self.rate_controller
        return self._native

    # ----------------------------------------------------------------- state
    def _vehicle_obs(self) -> dict[str, np.ndarray]:
        d = self.data
        return {
            "position": d.qpos[0:3].astype(np.float32),
            "velocity": d.qvel[0:3].astype(np.float32),
            "attitude": d.qpos[3:7].astype(np.float32),
            "body_rates": d.qvel[3:6].astype(np.float32),
        }

    def crashed(self) -> bool:
        """Touching the floor (the only collision pair) or leaving the arena."""
        x, y, z = self.data.qpos[0:3].tolist()
        h = self.cfg.arena_half_size
        return bool(self.data.ncon > 0 or abs(x) > h or abs(y) > h or z > 2 * h or z < 0.0)

    def features(self) -> dict[str, dict[str, Feature]]:
        units = {"velocity": "m/s", "attitude": "quat wxyz", "body_rates": "rad/s", "gate_normal": "unit",
                 "next_gate_normal": "unit", "progress": "fraction"}
        obs = {k: Feature(tuple(s.shape), str(s.dtype), "RGB" if k.startswith("pixels/") else units.get(k, "m"))
               for k, s in self.observation_space.items()}
        if self.cfg.action_mode == "rates":
            action = Feature((4,), "float32", "N, rad/s, rad/s, rad/s", ("thrust", "p", "q", "r"))
        else:
            action = Feature((4,), "float32", "N", MOTORS)
        return {"observation": obs, "action": {"action": action}}

