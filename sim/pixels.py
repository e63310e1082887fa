"""Camera observations: ``pixels/<camera>`` RGB arrays rendered offscreen with mujoco's renderer.

Any task can add them with ``gymnasium.make(id, pixels={"cameras": ["front", "wrist"]})``. Frames are
``(height, width, 3)`` uint8. With ``randomize: true`` each episode jitters camera positions, light
intensity and geom colours (image-level domain randomization), reproducibly from the reset seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import mujoco
import numpy as np


@dataclass
class PixelConfig:
    """Which cameras to render into the observation, and how."""

    cameras: list[str] = field(default_factory=list)
    """Camera names (empty: no pixel observations)."""
    width: int = 84
    """Image width (pixels)."""
    height: int = 84
    """Image height (pixels)."""
    randomize: bool = False
    """Jitter camera pose, lighting and colours each episode."""
    camera_jitter: float = 0.01
    """Camera position jitter (m, uniform per axis)."""
    light_jitter: float = 0.3
    """Relative jitter of light diffuse intensity."""
    color_jitter: float = 0.1
    """Absolute jitter of geom RGB colours."""


class PixelRenderer:
    """Renders the configured cameras of one env (one GL context, reused)."""

    def __init__(self, model: mujoco.MjModel, cfg: PixelConfig):
        for cam in cfg.cameras:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
                names = [model.camera(i).name for i in range(model.ncam)]
                raise ValueError(f"unknown camera '{cam}'; this model has {names}")
        self.model, self.cfg = model, cfg
        self._renderer: mujoco.Renderer | None = None
        self._nominal = (model.cam_pos.copy(), model.light_diffuse.copy(), model.geom_rgba.copy())

    def spaces(self) -> dict[str, gym.spaces.Box]:
        shape = (self.cfg.height, self.cfg.width, 3)
        return {f"pixels/{c}": gym.spaces.Box(0, 255, shape, np.uint8) for c in self.cfg.cameras}

    def randomize(self, rng: np.random.Generator) -> None:
        """Restore the nominal look, then jitter it (when enabled)."""
        cam_pos, light, rgba = self._nominal
        m, cfg = self.model, self.cfg
        m.cam_pos[:], m.light_diffuse[:], m.geom_rgba[:] = cam_pos, light, rgba
        if not cfg.randomize:
            return
        ids = [m.camera(c).id for c in cfg.cameras]
        m.cam_pos[ids] += rng.uniform(-cfg.camera_jitter, cfg.camera_jitter, (len(ids), 3))
        m.light_diffuse[:] = np.clip(light * (1 + rng.uniform(-cfg.light_jitter, cfg.light_jitter)), 0, 1)
        m.geom_rgba[:, :3] = np.clip(rgba[:, :3] + rng.uniform(-cfg.color_jitter, cfg.color_jitter,
                                                               (m.ngeom, 3)), 0, 1)

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        if not self.cfg.cameras:
            return {}
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.cfg.height, self.cfg.width)
        frames = {}
        for cam in self.cfg.cameras:
            self._renderer.update_scene(data, camera=cam)
            frames[f"pixels/{cam}"] = self._renderer.render()
        return frames

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
