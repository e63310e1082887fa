"""Record demonstrations of a policy (a scripted expert by default) into an episode dataset.

``num_envs`` envs step in lockstep and the policy is queried once per step for all of them (batched);
each env's episode is buffered in memory and committed on its own when it ends, so a crash loses at most
the episodes in flight. Episode attempts use seeds ``seed, seed + 1, ...``; appending to an existing
dataset continues after the largest seed already recorded, so resumed collection never repeats a
scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from robolearn.core.protocols import Feature, Policy
from robolearn.datasets.format import DatasetInfo
from robolearn.datasets.writer import EpisodeWriter
from robolearn.sim.registry import gym_make


@dataclass
class CollectConfig:
    """``robolearn collect``: record policy rollouts as a dataset."""

    env_id: str = "robolearn/PandaLift-v0"
    """Registered env id."""
    policy: str = "expert"
    """expert, random, zero, or ``module:Class`` (constructed with ``noise=, seed=``)."""
    episodes: int = 100
    """Episodes to add to the dataset."""
    out: str = "data/panda_lift"
    """Dataset directory (created, or appended to)."""
    noise: float = 0.0
    """Expert sub-optimality, for imperfect demonstrations."""
    only_success: bool = False
    """Keep only successful episodes (``episodes`` counts kept ones)."""
    max_attempts: int = 0
    """Give up after this many attempts (0: 5x episodes)."""
    seed: int = 0
    """Seed of the first attempt; attempt k resets with ``seed + k``."""
    num_envs: int = 4
    """Envs stepped in lockstep with one batched policy call."""
    cameras: list[str] = field(default_factory=list)
    """Cameras to record as ``pixels/<camera>`` uint8 images (empty: state only). They are the env's own pixel
    observations (:func:`camera_task`), so they are the frames evaluation, refinement and the ROS 2 twin render."""
    image_size: int = 84
    """Width and height of recorded camera images (pixels)."""
    images: str = ""
    """How camera images are stored: ``raw``, ``png`` (lossless), ``jpeg`` or ``jpeg:<quality>`` (lossy);
    empty: the existing dataset's encoding, raw for a new one (sizes and read speeds: docs/results.md)."""
    visual: str = "nominal"
    """What the cameras see while recording: ``nominal`` or a preset of ``configs/visual/<task>.yaml``
    (``train``: the training distribution of lighting, colours, camera poses, noise and blur)."""
    task: dict[str, Any] = field(default_factory=dict)
    """Task settings passed to the env, e.g. ``terminate_on_success: false`` to keep recording the held
    success state (frames for a success classifier)."""


@dataclass
class CollectResult:
    out: str
    kept: int
    attempts: int
    successes: int
    steps: int


def build_policy(name: str, env_id: str, action_space: gym.spaces.Box, noise: float, seed: int) -> Policy:
    """A named policy (see policy_factory) or any ``module:Class`` policy."""
    if ":" in name:
        from robolearn.sim.registry import load_object

        return load_object(name)(noise=noise, seed=seed)
    from robolearn.policy_factory import make_policy

    return make_policy(name, env_id, action_space, noise=noise, seed=seed)


def dataset_info_for(env: gym.Env, env_id: str, cameras: list[str], image_size: int,
                     extra: dict[str, Any] | None = None) -> DatasetInfo:
    """Dataset metadata from the env's ``features()`` (or its spaces), plus camera image features."""
    base = env.unwrapped
    if hasattr(base, "features"):
        feats = base.features()
        obs = dict(feats["observation"])
        action = next(iter(feats["action"].values()))
    else:
        obs = {k: Feature(tuple(s.shape), str(s.dtype)) for k, s in env.observation_space.spaces.items()}
        action = Feature(tuple(env.action_space.shape), "float32")
    for cam in cameras:
        obs[f"pixels/{cam}"] = Feature((image_size, image_size, 3), "uint8", "pixel")
    from robolearn.sim.registry import TASKS

    spec = TASKS.get(env_id)
    return DatasetInfo(
        observation=obs, action=action, fps=float(getattr(getattr(base, "cfg", None), "control_hz", 20.0)),
        env_id=env_id, robot=spec.embodiment if spec else "", task=spec.description if spec else env_id,
        extra=dict(extra or {}),
    )


def camera_task(task: dict[str, Any], cameras: list[str], size: int) -> dict[str, Any]:
    """Task settings ``task`` plus the ``pixels`` setting that renders ``cameras`` at ``size`` x ``size`` as
    ``pixels/<camera>`` observations (the task's own ``pixels`` setting wins; no cameras: ``task`` as it is)."""
    if not cameras:
        return dict(task)
    return {"pixels": {"cameras": list(cameras), "width": size, "height": size}, **task}


def observe(env: gym.Env, obs: dict[str, np.ndarray], cameras: list[str], size: int) -> dict[str, np.ndarray]:
    """``obs`` plus a ``pixels/<camera>`` image ``(size, size, 3)`` uint8 per camera: the env's own when it renders
    that camera (:func:`camera_task`), else rendered here."""
    missing = [c for c in cameras if f"pixels/{c}" not in obs]
    if not missing:
        return obs
    return {**obs, **{f"pixels/{c}": env.unwrapped.render_camera(c, size, size) for c in missing}}


def _stack(obs_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}


def collect(cfg: CollectConfig, progress: bool = True) -> CollectResult:
    """Run ``cfg.policy`` in ``cfg.env_id`` and append ``cfg.episodes`` episodes to ``cfg.out``."""
    if cfg.episodes < 1 or cfg.num_envs < 1:
        raise ValueError(f"episodes and num_envs must be >= 1, got {cfg.episodes}, {cfg.num_envs}")
    n = min(cfg.num_envs, cfg.episodes)
    from robolearn.sim.visual import visual_kwargs

    task = {**camera_task(cfg.task, cfg.cameras, cfg.image_size), **visual_kwargs(cfg.env_id, cfg.visual)}
    envs = [gym_make(cfg.env_id, **task) for _ in range(n)]
    policy = build_policy(cfg.policy, cfg.env_id, envs[0].action_space, cfg.noise, cfg.seed)
    extra = {"policy": cfg.policy, "noise": cfg.noise, "only_success": cfg.only_success}
    if cfg.task:
        extra["task"] = dict(cfg.task)
    if cfg.visual != "nominal":
        extra["visual"] = cfg.visual
    info = dataset_info_for(envs[0], cfg.env_id, cfg.cameras, cfg.image_size, extra)
    max_attempts = cfg.max_attempts or 5 * cfg.episodes
    result = CollectResult(str(cfg.out), 0, 0, 0, 0)
    with EpisodeWriter(Path(cfg.out), info, images=cfg.images or None) as writer, tqdm(
        total=cfg.episodes, desc=f"collect {cfg.env_id}", disable=not progress, unit="ep"
    ) as bar:
        seeds = [r.seed for r in writer.records if r.seed is not None]
        next_seed = max(max(seeds) + 1, cfg.seed) if seeds else cfg.seed
        buffers: list[list[dict[str, Any]] | None] = [None] * n
        current: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
        episode_seed = [0] * n

        def start(i: int) -> None:
            nonlocal next_seed
            if result.attempts >= max_attempts or result.kept + _open(buffers) >= cfg.episodes:
                buffers[i] = None
                return
            episode_seed[i], next_seed = next_seed, next_seed + 1
            result.attempts += 1
            obs, _ = envs[i].reset(seed=episode_seed[i])
            current[i] = observe(envs[i], obs, cfg.cameras, cfg.image_size)
            buffers[i] = []
            policy.reset([i])

        for i in range(n):
            start(i)
        while any(b is not None for b in buffers):
            active = [i for i in range(n) if buffers[i] is not None]
            chunk = np.asarray(policy.act(_stack([current[i] for i in range(n)])))
            for i in active:
                action = chunk[i, 0].astype(np.float32)
                obs, reward, terminated, truncated, step_info = envs[i].step(action)
                buffers[i].append({"obs": current[i], "action": action, "reward": reward,
                                   "is_success": bool(step_info.get("is_success", False))})
                current[i] = observe(envs[i], obs, cfg.cameras, cfg.image_size)
                if terminated or truncated:
                    steps, buffers[i] = buffers[i], None
                    _commit(writer, steps, episode_seed[i], terminated, truncated, cfg, result, bar)
                    start(i)
    for env in envs:
        env.close()
    return result


def _open(buffers: list[Any]) -> int:
    return sum(b is not None for b in buffers)


def _commit(writer: EpisodeWriter, steps: list[dict[str, Any]], seed: int, terminated: bool, truncated: bool,
            cfg: CollectConfig, result: CollectResult, bar: tqdm) -> None:
    success = steps[-1]["is_success"]
    result.successes += int(success)
    if cfg.only_success and not success:
        return
    writer.begin_episode(seed=seed)
    writer.add_steps(
        _stack([s["obs"] for s in steps]),
        np.stack([s["action"] for s in steps]),
        reward=np.array([s["reward"] for s in steps], np.float32),
        is_success=np.array([s["is_success"] for s in steps]),
    )
    writer.end_episode(success=success, terminated=terminated, truncated=truncated)
    result.kept += 1
    result.steps += len(steps)
    bar.update(1)
    bar.set_postfix(success=f"{result.successes}/{result.attempts}")
