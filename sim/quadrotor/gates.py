"""``robolearn/QuadGates-v0``: fly one lap through a sequence of gates as fast as possible.

The course is ``n_gates`` square gates (opening ``gate_size`` m) on an ellipse (semi-axes
``course_radii``), each facing along the ellipse (counter-clockwise), at the heights in
``gate_heights``; every episode jitters each gate's position and yaw. The Crazyflie starts at rest
``start_distance`` m before gate 0 on its axis. The lap is done (success, terminated) when the vehicle
has passed every gate in order; ``info["lap_time"]`` (s, present only once the lap is done) is the
time at which it crossed the last gate. A crash (floor, arena), hitting a gate frame or crossing the next gate's plane
outside its opening (a missed gate) ends the episode as a failure.

Passing is checked on the straight segment between consecutive control-step positions: the vehicle's
centre must cross the gate plane (in the gate's direction) within ``gate_size / 2 - r`` of the centre,
``r`` = arm length + propeller radius; within ``gate_size / 2 + frame + r`` it hit the frame.

Reward terms: ``progress`` = decrease of the distance to the next gate's centre (m, scale 1),
``gate`` = 1 per gate passed (scale 2), ``time`` = the control period (s, scale -0.5: a faster lap earns
more), ``crash`` = 1 on any failure (scale -10), ``success`` (scale 10).

Extra observations (world frame): ``gate_rel (3,)`` m (next gate centre minus position),
``gate_normal (3,)`` unit (its passing direction), ``next_gate_rel (3,)`` m and
``next_gate_normal (3,)`` (the gate after it), ``progress (1,)`` (gates passed / n_gates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from robolearn.sim.quadrotor.base import QuadTaskConfig, QuadTaskEnv
from robolearn.sim.quadrotor.hover import euler_quat

FRAME = 0.05
"""Width of a gate's frame bars (m)."""
GATE_COLOURS = {"next": [1.0, 0.55, 0.1, 1.0], "later": [0.6, 0.6, 0.65, 1.0], "passed": [0.2, 0.8, 0.3, 1.0]}


@dataclass
class QuadGatesConfig(QuadTaskConfig):
    """QuadGates-v0 settings (no wind by default)."""

    n_gates: int = 6
    """Number of gates in the lap."""
    course_radii: tuple[float, float] = (3.0, 2.0)
    """Semi-axes of the ellipse the gates stand on (m)."""
    gate_heights: tuple[float, ...] = (1.0, 1.4, 0.9, 1.6, 1.2, 0.8)
    """Gate centre heights (m), used cyclically."""
    gate_size: float = 0.5
    """Side of the square opening (m)."""
    gate_jitter: float = 0.15
    """Largest per-episode offset of a gate centre along each axis (m)."""
    gate_yaw_jitter: float = 0.17
    """Largest per-episode change of a gate's yaw (rad)."""
    start_distance: float = 1.5
    """Distance of the start point before gate 0 (m)."""


class QuadGatesEnv(QuadTaskEnv):
    """A lap through gates; see the module docstring."""

    config_class = QuadGatesConfig
    default_reward_scales = {"progress": 1.0, "gate": 2.0, "time": -0.5, "crash": -10.0, "success": 10.0}
    default_terminate_on_success = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        if cfg.n_gates < 2 or not cfg.gate_heights or cfg.gate_size <= 0:
            raise ValueError(f"need n_gates >= 2, gate heights and a positive gate_size, got {cfg}")
        m = self.model
        self._gate_mocap = [m.body(f"gate{i}").mocapid[0] for i in range(cfg.n_gates)]
        self._gate_geoms = [[g for g in range(m.ngeom) if m.geom_bodyid[g] == m.body(f"gate{i}").id]
                            for i in range(cfg.n_gates)]
        radius = self.params.arm_length + self.params.prop_radius
        self._pass_half = cfg.gate_size / 2 - radius
        self._frame_half = cfg.gate_size / 2 + FRAME + radius

    # ----------------------------------------------------------------- scene
    def _add_scene(self, spec: mujoco.MjSpec) -> None:
        cfg = self.cfg
        h, depth = cfg.gate_size / 2, 0.02
        for i in range(cfg.n_gates):
            gate = spec.worldbody.add_body(name=f"gate{i}", pos=[0, 0, 1.0], mocap=True)
            bars = [([depth, h + FRAME, FRAME / 2], [0, 0, h + FRAME / 2]),
                    ([depth, h + FRAME, FRAME / 2], [0, 0, -h - FRAME / 2]),
                    ([depth, FRAME / 2, h], [0, h + FRAME / 2, 0]),
                    ([depth, FRAME / 2, h], [0, -h - FRAME / 2, 0])]
            for size, pos in bars:
                gate.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=size, pos=pos, rgba=GATE_COLOURS["later"],
                              contype=0, conaffinity=0, density=0.0, group=2)

    def nominal_course(self) -> tuple[np.ndarray, np.ndarray]:
        """Gate centres ``(N, 3)`` m and yaws ``(N,)`` rad of the un-jittered course."""
        cfg = self.cfg
        a, b = cfg.course_radii
        theta = -np.pi / 2 + 2 * np.pi * np.arange(cfg.n_gates) / cfg.n_gates
        heights = np.resize(np.asarray(cfg.gate_heights, float), cfg.n_gates)
        centres = np.stack([a * np.cos(theta), b * np.sin(theta), heights], axis=1)
        yaws = np.arctan2(b * np.cos(theta), -a * np.sin(theta))
        return centres, yaws

    def _task_observation_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"gate_rel": (3,), "gate_normal": (3,), "next_gate_rel": (3,), "next_gate_normal": (3,),
                "progress": (1,)}

    def _reset_task(self, rng: np.random.Generator) -> dict[str, Any]:
        cfg, d = self.cfg, self.data
        centres, yaws = self.nominal_course()
        centres = centres + rng.uniform(-cfg.gate_jitter, cfg.gate_jitter, centres.shape)
        yaws = yaws + rng.uniform(-cfg.gate_yaw_jitter, cfg.gate_yaw_jitter, len(yaws))
        self._centres = centres
        self._normals = np.stack([np.cos(yaws), np.sin(yaws), np.zeros_like(yaws)], axis=1)
        for i, mocap in enumerate(self._gate_mocap):
            d.mocap_pos[mocap] = centres[i]
            d.mocap_quat[mocap] = euler_quat(0.0, 0.0, yaws[i])
        start = centres[0] - cfg.start_distance * self._normals[0]
        info = self.reset_vehicle(rng, start, euler_quat(0.0, 0.0, yaws[0]))
        self._next = 0
        self._lap_time = float("nan")
        self._crashed = self._frame_hit = self._missed = False
        self._passed_now = 0
        self._prev_pos = start.copy()
        self._prev_dist = float(np.linalg.norm(centres[0] - start))
        self._progress = 0.0
        self._colour_gates()
        return {**info, "gate_centres": centres.copy(), "gate_yaws": yaws.copy()}

    def _colour_gates(self) -> None:
        for i, geoms in enumerate(self._gate_geoms):
            key = "passed" if i < self._next else "next" if i == self._next else "later"
            self.model.geom_rgba[geoms] = GATE_COLOURS[key]

    # ----------------------------------------------------------------- gate logic
    def _check_gate(self, p0: np.ndarray, p1: np.ndarray) -> None:
        """Advance the lap if the segment ``p0 -> p1`` passes the next gate; flag frame hits and misses."""
        if self._next >= self.cfg.n_gates:
            return
        g, n = self._centres[self._next], self._normals[self._next]
        s0, s1 = float((p0 - g) @ n), float((p1 - g) @ n)
        if not (s0 < 0.0 <= s1):
            return
        frac = s0 / (s0 - s1)
        hit = p0 + frac * (p1 - p0) - g
        side = np.array([-n[1], n[0], 0.0])
        u, v = abs(float(hit @ side)), abs(float(hit[2]))
        if u < self._pass_half and v < self._pass_half:
            self._next += 1
            self._passed_now += 1
            if self._next == self.cfg.n_gates:
                self._lap_time = (self._elapsed - 1 + frac) / self.control_hz
            self._colour_gates()
        elif u < self._frame_half and v < self._frame_half:
            self._frame_hit = True
        else:
            self._missed = True

    def post_step(self):
        pos = self.data.qpos[0:3].copy()
        current = min(self._next, self.cfg.n_gates - 1)
        self._passed_now = 0
        self._elapsed += 1  # the lap time of a crossing uses this step's index
        self._check_gate(self._prev_pos, pos)
        self._elapsed -= 1
        dist = float(np.linalg.norm(self._centres[current] - pos))
        self._progress = self._prev_dist - dist
        nxt = min(self._next, self.cfg.n_gates - 1)
        self._prev_dist = float(np.linalg.norm(self._centres[nxt] - pos))
        self._prev_pos = pos
        self._crashed = self.crashed()
        obs, reward, terminated, truncated, info = super().post_step()
        info.update(gates_passed=self._next, hit_gate_frame=self._frame_hit, missed_gate=self._missed,
                    crashed=self._crashed)
        if self._next >= self.cfg.n_gates:
            info["lap_time"] = self._lap_time
        return obs, reward, terminated, truncated, info

    # ----------------------------------------------------------------- task hooks
    def _observation(self) -> dict[str, np.ndarray]:
        obs = self._vehicle_obs()
        n = self.cfg.n_gates
        i, j = min(self._next, n - 1), min(self._next + 1, n - 1)
        pos = self.data.qpos[0:3]
        obs.update(
            gate_rel=(self._centres[i] - pos).astype(np.float32),
            gate_normal=self._normals[i].astype(np.float32),
            next_gate_rel=(self._centres[j] - pos).astype(np.float32),
            next_gate_normal=self._normals[j].astype(np.float32),
            progress=np.array([self._next / n], np.float32),
        )
        return obs

    def _is_success(self) -> bool:
        return self._next >= self.cfg.n_gates

    def _is_failure(self) -> bool:
        return self._crashed or self._frame_hit or self._missed

    def _reward_terms(self) -> dict[str, float]:
        return {"progress": self._progress, "gate": float(self._passed_now), "time": 1.0 / self.control_hz,
                "crash": float(self._is_failure())}
