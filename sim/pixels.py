"""Camera observations: ``pixels/<camera>`` RGB arrays rendered offscreen with mujoco's renderer.

Any task can add them with ``gymnasium.make(id, pixels={"cameras": ["front", "wrist"]})``. Frames are
``(height, width, 3)`` uint8. With ``randomize: true`` each episode jitters camera positions, light
intensity and geom colours (image-level domain randomization), reproducibly from the reset seed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
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
    geoms: str = "collision"
    """Which geoms to draw: ``collision`` (coarse meshes, ~3x faster on a CPU) or ``visual`` (detailed)."""
    antialias: bool = False
    """Multisample anti-aliasing (costs ~2.5x on a CPU renderer)."""


OFFSCREEN_SIZE = (640, 480)
"""Offscreen framebuffer (width, height) of every task model: the largest camera image it can render."""


def set_render_defaults(spec: mujoco.MjSpec) -> None:
    """The offscreen framebuffer size and headlight every robolearn scene shares (videos, pixel observations)."""
    spec.visual.global_.offwidth, spec.visual.global_.offheight = OFFSCREEN_SIZE
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]


class PixelRenderer:
    """Renders the configured cameras of one env.

    A GL context can be current in one thread only, and batched envs step in a thread pool, so each
    thread that renders this env gets (and keeps) its own renderer.
    """

    def __init__(self, model: mujoco.MjModel, cfg: PixelConfig):
        for cam in cfg.cameras:
            if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
                names = [model.camera(i).name for i in range(model.ncam)]
                raise ValueError(f"unknown camera '{cam}'; this model has {names}")
        if cfg.geoms not in ("collision", "visual"):
            raise ValueError(f"pixels.geoms must be 'collision' or 'visual', got {cfg.geoms!r}")
        self.model, self.cfg = model, cfg
        self._option = mujoco.MjvOption()
        if cfg.geoms == "collision":  # group 2 holds detailed visual meshes, group 3 their collision hulls
            self._option.geomgroup[:] = [1, 1, 0, 1, 0, 0]
        self._local = threading.local()
        self._all: list[mujoco.Renderer] = []
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
        renderer = getattr(self._local, "renderer", None)
        if renderer is None:
            samples = self.model.vis.quality.offsamples
            if not self.cfg.antialias:  # the offscreen buffer's samples are fixed when the context is made
                self.model.vis.quality.offsamples = 0
            renderer = mujoco.Renderer(self.model, self.cfg.height, self.cfg.width)
            self.model.vis.quality.offsamples = samples
            self._local.renderer = renderer
            self._all.append(renderer)
        frames = {}
        with self._released_after():
            for cam in self.cfg.cameras:
                renderer.update_scene(data, camera=cam, scene_option=self._option)
                frames[f"pixels/{cam}"] = renderer.render()
        return frames

    @staticmethod
    @contextlib.contextmanager
    def _released_after() -> Iterator[None]:
        """Outside the main thread, leave no EGL context current once rendering is done.

        A context still current in a (pool) thread cannot be made current by another one (EGL_BAD_ACCESS), so
        :meth:`close` from the main thread, or the renderer's own finalizer, could not free it. (OSMesa and
        GLFW contexts have no such tie; GLFW renders on the main thread only.)
        """
        try:
            yield
        finally:
            egl_backend = os.environ.get("MUJOCO_GL", "").lower() == "egl"
            if egl_backend and threading.current_thread() is not threading.main_thread():
                from mujoco import egl

                egl.EGL.eglMakeCurrent(egl.EGL_DISPLAY, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_SURFACE,
                                       egl.EGL.EGL_NO_CONTEXT)

    def close(self) -> None:
        for renderer in self._all:  # none is current in another thread (see _released_after)
            renderer.close()
        self._all.clear()
        self._local = threading.local()
