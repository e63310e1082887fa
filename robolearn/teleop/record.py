"""``robolearn teleop``: build the env, device, viewer and dataset writer, and run a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from robolearn.collect import build_policy, camera_task, dataset_info_for, observe
from robolearn.datasets.writer import EpisodeWriter
from robolearn.sim.registry import gym_make
from robolearn.teleop.base import EEDeltaMapping, TeleopDevice
from robolearn.teleop.devices import DEVICES, make_device
from robolearn.teleop.session import SessionResult, TeleopSession, has_display

__all__ = ["DEVICES", "TeleopConfig", "make_device", "record_teleop"]


@dataclass
class TeleopConfig:
    """``robolearn teleop``: record human demonstrations or interventions."""

    env_id: str = "robolearn/PandaLift-v0"
    """Registered env id."""
    device: str = "keyboard"
    """A name in :data:`robolearn.teleop.devices.DEVICES`: keyboard, gamepad or spacemouse."""
    out: str = "data/teleop"
    """Dataset directory (created, or appended to)."""
    policy: str = ""
    """Optional base policy the person corrects (expert, module:Class); empty: full teleoperation."""
    episodes: int = 0
    """Stop after this many saved episodes (0: until quit)."""
    max_episode_steps: int = 1200
    """Time limit of one episode in control steps (60 s at 20 Hz)."""
    max_step: float = 0.01
    """TCP displacement per step at full deflection (m)."""
    max_yaw_step: float = 0.05
    """Yaw per step at full deflection (rad)."""
    cameras: list[str] = field(default_factory=list)
    """Cameras to record as pixels/<camera>."""
    image_size: int = 84
    """Recorded image width and height (pixels)."""
    viewer: str = "auto"
    """auto (when a display exists), on, or off."""
    seed: int = 0
    """Seed of the first episode's scene."""


def _viewer(env: gym.Env, mode: str) -> Any:
    if mode == "off" or (mode == "auto" and not has_display()):
        return None
    import mujoco.viewer

    base = env.unwrapped
    return mujoco.viewer.launch_passive(base.model, base.data)


def record_teleop(cfg: TeleopConfig, source: Any = None, extra_devices: list[TeleopDevice] | None = None,
                  realtime: bool = True, max_steps: int | None = None) -> SessionResult:
    """Run a teleop session recording into ``cfg.out``; returns what was recorded.

    ``source`` feeds the device (None: the real keyboard / gamepad / SpaceMouse). With a SpaceMouse or
    gamepad on a terminal, a keyboard is added for the session keys unless ``extra_devices`` is given.
    """
    env = gym_make(cfg.env_id, max_episode_steps=cfg.max_episode_steps, **camera_task({}, cfg.cameras, cfg.image_size))
    mapping = EEDeltaMapping(cfg.max_step, cfg.max_yaw_step)
    device = make_device(cfg.device, mapping, source)
    if extra_devices is None:
        extra_devices = []
        if cfg.device != "keyboard" and source is None:
            from robolearn.teleop.keyboard import KeyboardTeleop, TerminalKeys

            extra_devices.append(KeyboardTeleop(TerminalKeys(), mapping))
    policy = build_policy(cfg.policy, cfg.env_id, env.action_space, 0.0, cfg.seed) if cfg.policy else None
    info = dataset_info_for(env, cfg.env_id, cfg.cameras, cfg.image_size,
                            {"source": "teleop", "device": cfg.device, "policy": cfg.policy})
    viewer = _viewer(env, cfg.viewer)
    try:
        with EpisodeWriter(Path(cfg.out), info) as writer:
            session = TeleopSession(
                env, device, writer, policy=policy, extra_devices=extra_devices,
                observe=lambda o: observe(env, o, cfg.cameras, cfg.image_size), realtime=realtime,
                seed=cfg.seed, viewer=viewer,
            )
            return session.run(max_episodes=cfg.episodes or None, max_steps=max_steps)
    finally:
        for d in [device, *extra_devices]:
            d.close()
        if viewer is not None:
            viewer.close()
        env.close()
