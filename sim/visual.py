"""Visual domain randomization: lighting, colours, table texture, camera pose, image noise and blur.

A :class:`VisualConfig` lists ranges ``[low, high]`` drawn uniformly at every reset, like the dynamics'
:class:`~robolearn.sim.randomization.RandomizationConfig`. What changes is only what a camera sees:

* lights: the direction of every model light tilted by ``light_tilt_deg`` about a random azimuth, the
  diffuse intensity (model lights and the headlight) scaled by ``light_diffuse_scale``, and
  ``light_ambient`` (0..1 grey) added to their ambient;
* colours: the ``object_geoms`` and ``table_geoms`` (geom or body names) drawn from an HSV box each;
  the table keeps its textured material with probability ``table_texture_probability``;
* cameras: each of ``cameras`` (empty: all) moved by a shift of length ``camera_shift_m`` (m) and turned
  by ``camera_rotation_deg`` (deg), both in a random direction, in its parent body's frame;
* images: each ``pixels/<camera>`` frame blurred (Gaussian, ``blur_sigma_px`` pixels) and given Gaussian
  noise of std ``noise_std`` (0..255 units), fresh noise every frame.

The draws use a generator of their own, seeded from the reset seed, so the env's ``np_random`` (object
poses, dynamics noise, pushes) is consumed exactly as without visual randomization: the physics of a
seeded episode is unchanged. Presets live in ``configs/visual/<Task>.yaml`` with two sections, ``train``
(the training distribution) and ``held_out`` (ranges disjoint from ``train``'s: never seen in training);
see :func:`load_visual_preset`. What an episode drew is reported in the reset ``info["visual"]``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from robolearn.core.config import ConfigError
from robolearn.sim.randomization import load_task_preset

Range = tuple[float, float]
"""``(low, high)``, drawn uniformly."""

VISUAL_STREAM = 0x5F15A1
"""Mixed into the reset seed so the visual generator's stream differs from the env's own."""


@dataclass
class ColorRange:
    """An HSV box that colours are drawn from (each component 0..1; hue wraps at 1)."""

    hue: Range = (0.0, 1.0)
    """Hue range (0 red, 1/3 green, 2/3 blue)."""
    saturation: Range = (0.0, 1.0)
    """Saturation range (0 grey, 1 pure colour)."""
    value: Range = (0.0, 1.0)
    """Brightness range (0 black, 1 full)."""

    def __post_init__(self) -> None:
        for name in ("hue", "saturation", "value"):
            _check_range(getattr(self, name), name, 0.0, 1.0)


@dataclass
class VisualConfig:
    """Ranges drawn once per episode (noise: once per frame, at the episode's std). Defaults: nothing changes."""

    object_geoms: list[str] = field(default_factory=list)
    """Geoms recoloured with ``object_color``: geom names, or body names (all their geoms)."""
    table_geoms: list[str] = field(default_factory=list)
    """Geoms recoloured with ``table_color`` (geom or body names)."""
    object_color: ColorRange | None = None
    """HSV box of the object colour (None: keep the model's)."""
    table_color: ColorRange | None = None
    """HSV box of the table colour (None: keep the model's)."""
    table_texture_probability: float = 1.0
    """Chance that the table keeps its textured material (else it is drawn flat in its colour)."""
    light_tilt_deg: Range = (0.0, 0.0)
    """Angle (deg) between each light's drawn direction and its model direction."""
    light_diffuse_scale: Range = (1.0, 1.0)
    """Multiplies the diffuse intensity of the lights and the headlight."""
    light_ambient: Range = (0.0, 0.0)
    """Grey level (0..1) added to the ambient of the lights and the headlight."""
    cameras: list[str] = field(default_factory=list)
    """Cameras whose pose is jittered (empty: every camera of the model)."""
    camera_shift_m: Range = (0.0, 0.0)
    """Length (m) of each camera's position offset, in a random direction."""
    camera_rotation_deg: Range = (0.0, 0.0)
    """Angle (deg) of each camera's orientation offset, about a random axis."""
    noise_std: Range = (0.0, 0.0)
    """Std (0..255 units) of the Gaussian pixel noise, drawn per episode; fresh noise every frame."""
    blur_sigma_px: Range = (0.0, 0.0)
    """Gaussian blur sigma (pixels) of every frame; under 0.1 no blur."""

    def __post_init__(self) -> None:
        _check_range(self.light_tilt_deg, "light_tilt_deg", 0.0, 90.0)
        for name in ("light_diffuse_scale", "light_ambient", "camera_shift_m", "camera_rotation_deg",
                     "noise_std", "blur_sigma_px"):
            _check_range(getattr(self, name), name, 0.0, np.inf)
        if not 0.0 <= self.table_texture_probability <= 1.0:
            raise ValueError(f"table_texture_probability must be in [0, 1], got {self.table_texture_probability}")

    @property
    def active(self) -> bool:
        """Whether anything is randomized (False for the defaults, the ``nominal`` preset)."""
        return self != VisualConfig()


def _check_range(bounds: Range, name: str, low: float, high: float) -> None:
    lo, hi = bounds
    if not low <= lo <= hi <= high:
        raise ValueError(f"{name} must be [low, high] with {low:g} <= low <= high <= {high:g}, got {list(bounds)}")


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    low, high = bounds
    return float(low) if low == high else float(rng.uniform(low, high))


def _direction(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random unit vector ``(3,)``."""
    v = rng.normal(size=3)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def geom_ids(model: mujoco.MjModel, names: list[str]) -> list[int]:
    """Ids of the geoms named ``names``, a body name standing for all of its geoms."""
    ids: list[int] = []
    for name in names:
        gid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if gid >= 0:
            ids.append(gid)
        elif bid >= 0:
            ids.extend(int(g) for g in np.flatnonzero(model.geom_bodyid == bid))
        else:
            raise ConfigError(f"visual: no geom or body named '{name}' in this model; fix object_geoms / table_geoms")
    return ids


class VisualRandomizer:
    """Applies a :class:`VisualConfig` to one env's model (at reset) and to its camera frames (every step).

    Args:
        model: the env's compiled model; its look is restored to what it is now before every draw.
        cfg: the ranges.
    """

    def __init__(self, model: mujoco.MjModel, cfg: VisualConfig):
        self.model, self.cfg = model, cfg
        self._objects = geom_ids(model, cfg.object_geoms)
        self._tables = geom_ids(model, cfg.table_geoms)
        names = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in cfg.cameras if c not in names]
        if unknown:
            raise ConfigError(f"visual: unknown cameras {unknown}; this model has {names}")
        self._cameras = [model.camera(c).id for c in cfg.cameras] if cfg.cameras else list(range(model.ncam))
        self._nominal = {name: getattr(model, name).copy() for name in
                         ("light_dir", "light_diffuse", "light_ambient", "geom_rgba", "geom_matid", "cam_pos",
                          "cam_quat")}
        head = model.vis.headlight
        self._headlight = (np.array(head.diffuse), np.array(head.ambient))
        self._rng = np.random.default_rng()
        self.noise_std = 0.0
        self.blur_sigma = 0.0

    def reseed(self, seed: int | None) -> None:
        """A fresh stream for a seeded reset (``seed`` None: continue the current one)."""
        if seed is not None:
            self._rng = np.random.default_rng([VISUAL_STREAM, int(seed)])

    def sample(self) -> dict[str, Any]:
        """Restore the nominal look, draw this episode's, apply it; returns what was drawn (empty: nominal)."""
        m, nom = self.model, self._nominal
        for name, value in nom.items():
            getattr(m, name)[:] = value
        m.vis.headlight.diffuse, m.vis.headlight.ambient = self._headlight
        self.noise_std = self.blur_sigma = 0.0
        if not self.cfg.active:
            return {}
        drawn: dict[str, Any] = {}
        drawn.update(self._lights())
        drawn.update(self._colors())
        drawn.update(self._camera_poses())
        self.noise_std = drawn["noise_std"] = _uniform(self._rng, self.cfg.noise_std)
        self.blur_sigma = drawn["blur_sigma_px"] = _uniform(self._rng, self.cfg.blur_sigma_px)
        return drawn

    def _lights(self) -> dict[str, float]:
        m, cfg, rng = self.model, self.cfg, self._rng
        tilt, scale = _uniform(rng, cfg.light_tilt_deg), _uniform(rng, cfg.light_diffuse_scale)
        ambient = _uniform(rng, cfg.light_ambient)
        for i in range(m.nlight):
            m.light_dir[i] = _tilted(self._nominal["light_dir"][i], np.deg2rad(tilt), rng)
        m.light_diffuse[:] = np.clip(self._nominal["light_diffuse"] * scale, 0.0, 1.0)
        m.light_ambient[:] = np.clip(self._nominal["light_ambient"] + ambient, 0.0, 1.0)
        diffuse, amb = self._headlight
        m.vis.headlight.diffuse = np.clip(diffuse * scale, 0.0, 1.0)
        m.vis.headlight.ambient = np.clip(amb + ambient, 0.0, 1.0)
        return {"light_tilt_deg": tilt, "light_diffuse_scale": scale, "light_ambient": ambient}

    def _colors(self) -> dict[str, Any]:
        m, cfg, rng = self.model, self.cfg, self._rng
        drawn: dict[str, Any] = {}
        for part, ids, box in (("object", self._objects, cfg.object_color), ("table", self._tables, cfg.table_color)):
            if box is None or not ids:
                continue
            hsv = [_uniform(rng, box.hue) % 1.0, _uniform(rng, box.saturation), _uniform(rng, box.value)]
            rgb = colorsys.hsv_to_rgb(*hsv)
            m.geom_rgba[ids, :3] = rgb
            drawn[f"{part}_hsv"], drawn[f"{part}_rgb"] = [float(v) for v in hsv], [float(v) for v in rgb]
        if self._tables and cfg.table_texture_probability < 1.0:
            textured = bool(rng.random() < cfg.table_texture_probability)
            if not textured:
                m.geom_matid[self._tables] = -1
            drawn["table_textured"] = textured
        return drawn

    def _camera_poses(self) -> dict[str, float]:
        m, cfg, rng = self.model, self.cfg, self._rng
        drawn: dict[str, float] = {}
        for cid in self._cameras:
            shift, angle = _uniform(rng, cfg.camera_shift_m), _uniform(rng, cfg.camera_rotation_deg)
            m.cam_pos[cid] = self._nominal["cam_pos"][cid] + shift * _direction(rng)
            turn = np.zeros(4)
            mujoco.mju_axisAngle2Quat(turn, _direction(rng), np.deg2rad(angle))
            quat = np.zeros(4)
            mujoco.mju_mulQuat(quat, self._nominal["cam_quat"][cid], turn)
            m.cam_quat[cid] = quat
            name = m.camera(cid).name or str(cid)
            drawn[f"camera_shift_m/{name}"], drawn[f"camera_rotation_deg/{name}"] = shift, angle
        return drawn

    def process(self, frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Blur and noise each ``(H, W, 3)`` uint8 frame (in place of the dict's values); nominal: unchanged."""
        if self.blur_sigma < 0.1 and self.noise_std <= 0.0:
            return frames
        for key, frame in frames.items():
            img = frame
            if self.blur_sigma >= 0.1:
                import cv2

                img = cv2.GaussianBlur(img, (0, 0), sigmaX=self.blur_sigma, borderType=cv2.BORDER_REFLECT)
            if self.noise_std > 0.0:
                noisy = img.astype(np.float32) + self._rng.normal(0.0, self.noise_std, img.shape).astype(np.float32)
                img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
            frames[key] = img
        return frames


def _tilted(direction: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """``direction`` ``(3,)`` turned by ``angle`` (rad) about a random axis perpendicular to it."""
    d = direction / max(float(np.linalg.norm(direction)), 1e-12)
    axis = np.cross(d, _direction(rng))
    axis /= max(float(np.linalg.norm(axis)), 1e-12)
    return d * np.cos(angle) + np.cross(axis, d) * np.sin(angle)


def visual_kwargs(env_id: str, name: str) -> dict[str, Any]:
    """The env keyword that renders under visual preset ``name``: ``{"visual": VisualConfig}``, or nothing for
    ``nominal`` (the env's own look)."""
    return {} if name == "nominal" else {"visual": load_visual_preset(env_id, name)}


def load_visual_preset(env_id: str, name: str) -> VisualConfig:
    """Preset ``name`` for ``env_id``: ``nominal`` (nothing changes), ``train`` or ``held_out`` (``held-out``
    accepted), from ``configs/visual/<Task>.yaml``."""
    return load_task_preset(VisualConfig, env_id, name, folder="visual", noun="visual preset",
                            hint="; use visual 'nominal' or add it")
