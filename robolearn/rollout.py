"""Run a policy for N episodes and report success with a confidence interval.

:func:`run_rollouts` is what ``robolearn rollout`` and ``robolearn demo`` call. Episode ``i`` resets
with seed ``seed + i``, so a result is reproducible from the seed alone. Action chunks ``(B, Ta, Da)``
are executed step by step and the policy is queried again when its chunk runs out (receding horizon).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from robolearn.core.config import make_run_dir, save_config
from robolearn.core.protocols import Policy
from robolearn.core.stats import format_rate, wilson_interval
from robolearn.policy_factory import make_policy
from robolearn.sim.registry import gym_make


@dataclass
class EnvConfig:
    """Which task to run and how."""

    id: str = "robolearn/PandaLift-v0"
    """Registered env id (see `robolearn envs`)."""
    num_envs: int = 1
    """Parallel envs (used by batched collection and training; rollouts evaluate one at a time)."""
    task: dict[str, Any] = field(default_factory=dict)
    """Task settings passed to the env's own config class (e.g. action_mode, reward_scales)."""
    dynamics: str = "nominal"
    """nominal, randomize (the training distribution) or real-gap (held-out stand-in for the real robot)."""
    pixels: dict[str, Any] = field(default_factory=dict)
    """Camera observations, e.g. {cameras: [front, wrist], width: 84, height: 84}."""
    visual: str = "nominal"
    """What the cameras see: nominal, train (visual randomization) or held-out (ranges training never samples)."""


@dataclass
class RolloutConfig:
    """``robolearn rollout``: evaluate a named policy."""

    env: EnvConfig = field(default_factory=EnvConfig)
    policy: str = "expert"
    """expert, random or zero."""
    noise: float = 0.0
    """Expert sub-optimality (0 = clean expert)."""
    episodes: int = 100
    """Number of episodes."""
    seed: int = 0
    """Episode i resets with seed + i."""
    video_episodes: int = 0
    """Record this many episodes as MP4 (0 = none)."""
    video_camera: str = "front"
    """Camera to record."""
    video_size: int = 256
    """Video width and height (pixels)."""
    out_dir: str = "runs"
    """Parent folder of the run directory."""
    run_name: str = ""
    """Run directory name (default: rollout-<task>-<policy>-<time>)."""


@dataclass
class RolloutResult:
    """Outcome of :func:`run_rollouts`."""

    env_id: str
    policy: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_return: float
    mean_length: float
    steps_per_second: float
    action_clip_count: int
    run_dir: str = ""
    videos: list[str] = field(default_factory=list)
    outcomes: list[bool] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.env_id} [{self.policy}]: success {format_rate(self.successes, self.episodes)}, "
            f"return {self.mean_return:.3f}, length {self.mean_length:.1f} steps"
        )


def make_env(cfg: EnvConfig, **kwargs: Any) -> gym.Env:
    """A single env as ``cfg`` describes it (task settings, dynamics and visual presets, pixels)."""
    from robolearn.sim.randomization import load_dynamics_preset
    from robolearn.sim.visual import visual_kwargs

    dynamics = load_dynamics_preset(cfg.id, cfg.dynamics)
    kwargs.update(visual_kwargs(cfg.id, cfg.visual))
    return gym_make(cfg.id, randomization=dynamics, pixels=cfg.pixels or None, **cfg.task, **kwargs)


def run_episode(env: gym.Env, policy: Policy, seed: int, frames: list | None = None,
                camera: str = "front", size: int = 256) -> dict[str, Any]:
    """One episode of ``policy`` in a single (unbatched) ``env``; frames appended when a list is given."""
    obs, info = env.reset(seed=seed)
    policy.reset([0])
    queue: list[np.ndarray] = []
    total, length, done = 0.0, 0, False
    base = env.unwrapped
    if frames is not None:
        frames.append(base.render_camera(camera, size, size))
    observe = getattr(policy, "observe", None)
    while not done:
        batch = {k: np.asarray(v)[None] for k, v in obs.items()}
        if not queue:
            queue = list(np.asarray(policy.act(batch))[0])
        elif observe is not None:
            observe(batch)
        obs, reward, terminated, truncated, info = env.step(queue.pop(0))
        total += float(reward)
        length += 1
        done = terminated or truncated
        if frames is not None:
            frames.append(base.render_camera(camera, size, size))
    return {"success": bool(info.get("is_success", False)), "return": total, "length": length,
            "clipped": int(info.get("action_clip_count", 0))}


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """Encode RGB frames ``(H, W, 3)`` uint8 as an H.264 MP4."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def run_rollouts(cfg: RolloutConfig, policy: Policy | None = None, progress: bool = True) -> RolloutResult:
    """Run ``cfg.episodes`` episodes; write config, results and videos into a run directory."""
    if cfg.episodes <= 0:
        raise ValueError(f"episodes must be positive, got {cfg.episodes}")
    run_dir = make_run_dir(None, cfg.out_dir, cfg.run_name, f"rollout-{cfg.env.id.split('/')[-1]}-{cfg.policy}")
    save_config(cfg, run_dir / "config.yaml")
    env = make_env(cfg.env)
    policy = policy or make_policy(cfg.policy, cfg.env.id, env.action_space, noise=cfg.noise, seed=cfg.seed)
    outcomes, videos = [], []
    start, steps = time.perf_counter(), 0
    bar = tqdm(range(cfg.episodes), desc=f"{cfg.env.id} [{cfg.policy}]", disable=not progress, leave=False)
    for i in bar:
        frames: list | None = [] if i < cfg.video_episodes else None
        ep = run_episode(env, policy, cfg.seed + i, frames, cfg.video_camera, cfg.video_size)
        outcomes.append(ep)
        steps += ep["length"]
        if frames:
            fps = env.unwrapped.control_hz
            videos.append(str(write_video(frames, run_dir / "videos" / f"episode{i:03d}.mp4", fps)))
        bar.set_postfix(success=f"{np.mean([o['success'] for o in outcomes]):.2f}")
    env.close()
    elapsed = time.perf_counter() - start
    wins = sum(o["success"] for o in outcomes)
    result = RolloutResult(
        env_id=cfg.env.id, policy=cfg.policy, episodes=cfg.episodes, successes=wins,
        success_rate=wins / cfg.episodes, ci95=wilson_interval(wins, cfg.episodes),
        mean_return=float(np.mean([o["return"] for o in outcomes])),
        mean_length=float(np.mean([o["length"] for o in outcomes])),
        steps_per_second=steps / elapsed, action_clip_count=sum(o["clipped"] for o in outcomes),
        run_dir=str(run_dir), videos=videos, outcomes=[o["success"] for o in outcomes],
    )
    (run_dir / "results.json").write_text(json.dumps(asdict(result), indent=2))
    return result
