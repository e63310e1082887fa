"""Rollout evaluation of a :class:`~robolearn.core.protocols.Policy` in a registered sim task.

``evaluate(policy, env_id, episodes)`` runs ``num_envs`` environments in lockstep so the policy sees a
batch, executes each returned chunk ``(B, Ta, Da)`` open-loop, and feeds the intermediate observations to
the policy's ``observe`` (when it has one) so its observation history holds consecutive steps. An env
whose episode ends mid-chunk starts its next episode at once and idles until the next replanning.
Envs come from :func:`robolearn.rollout.make_env` (dynamics preset: nominal, randomize or real-gap); the
``pixels/<camera>`` observations a policy reads are switched on in the env at the policy's image size.
Success is ``info["is_success"]`` at the end of the episode; rates carry a 95% Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robolearn.core.protocols import Policy
from robolearn.core.stats import format_rate, wilson_interval
from robolearn.rollout import write_video


@dataclass
class EvalResult:
    """Per-episode outcomes of an evaluation."""

    env_id: str
    successes: list[bool] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)

    @property
    def episodes(self) -> int:
        return len(self.successes)

    def scalars(self) -> dict[str, float]:
        """Success rate with its 95% interval, mean return and mean episode length."""
        n, k = self.episodes, int(sum(self.successes))
        lo, hi = wilson_interval(k, n)
        return {
            "success_rate": k / n if n else 0.0, "success_ci_low": lo, "success_ci_high": hi,
            "return_mean": float(np.mean(self.returns)) if n else 0.0,
            "length_mean": float(np.mean(self.lengths)) if n else 0.0,
        }

    def summary(self) -> str:
        s = self.scalars()
        return (f"{self.env_id}: success {format_rate(int(sum(self.successes)), self.episodes)}, "
                f"return {s['return_mean']:.3f}, length {s['length_mean']:.1f} over {self.episodes} episodes")


def pixel_config(policy: Policy) -> dict[str, Any]:
    """The env ``pixels`` setting that produces the ``pixels/<camera>`` keys ``policy`` reads."""
    shapes = getattr(policy, "shapes", {})
    cams = [k.removeprefix("pixels/") for k in shapes if k.startswith("pixels/")]
    if not cams:
        return {}
    sizes = {tuple(shapes[f"pixels/{c}"][:2]) for c in cams}
    if len(sizes) > 1:
        raise ValueError(f"policy cameras {cams} have different image sizes {sorted(sizes)}")
    (h, w), = sizes
    return {"cameras": cams, "width": w, "height": h}


def _stack(frames: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([f[k] for f in frames]) for k in frames[0]}


def evaluate(
    policy: Policy,
    env_id: str,
    episodes: int = 100,
    seed: int = 0,
    num_envs: int = 8,
    dynamics: str = "nominal",
    task: dict[str, Any] | None = None,
    video_dir: str | Path | None = None,
    videos: int = 0,
    progress: bool = True,
) -> EvalResult:
    """Run ``episodes`` episodes (episode ``i`` reset with seed ``seed + i``) and collect outcomes.

    ``dynamics`` names a preset of ``configs/dynamics/`` (``nominal``, ``randomize``, ``real-gap``);
    ``task`` holds env settings (``action_mode``...); the first ``videos`` episodes are written as MP4
    files under ``video_dir``.
    """
    from tqdm import tqdm

    from robolearn.rollout import EnvConfig, make_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    n = min(num_envs, episodes)
    env_cfg = EnvConfig(id=env_id, task=dict(task or {}), dynamics=dynamics, pixels=pixel_config(policy))
    render = "rgb_array" if video_dir is not None and videos > 0 else None
    envs = [make_env(env_cfg, render_mode=render) for _ in range(n)]
    result = EvalResult(env_id)
    state = _Rollouts(envs, episodes, seed, videos if render else 0)
    policy.reset()
    bar = tqdm(total=episodes, disable=not progress, desc=f"eval {env_id}")
    try:
        while state.any_active():
            state.new_chunk()
            chunk = policy.act(state.batch())
            for j in range(chunk.shape[1]):
                for done in state.step_all(chunk[:, j]):
                    i, success, ret, length, frames = done
                    policy.reset([i])
                    result.successes.append(success)
                    result.returns.append(ret)
                    result.lengths.append(length)
                    if frames:
                        fps = float(envs[0].metadata.get("render_fps", 20))
                        name = f"episode_{len(result.successes) - 1:03d}.mp4"
                        result.videos.append(write_video(frames, Path(video_dir) / name, fps))  # type: ignore[arg-type]
                    bar.update(1)
                if j < chunk.shape[1] - 1 and hasattr(policy, "observe") and state.any_active():
                    policy.observe(state.batch())
    finally:
        bar.close()
        for env in envs:
            env.close()
    return result


class _Rollouts:
    """Bookkeeping of ``len(envs)`` environments sharing one batched policy."""

    def __init__(self, envs: list[gym.Env], episodes: int, seed: int, videos: int) -> None:
        self.envs, self.episodes, self.seed = envs, episodes, seed
        self.videos = videos
        self.started = 0
        self.active = [False] * len(envs)
        self.idle = [False] * len(envs)
        self.frames: list[dict] = [{}] * len(envs)
        self.ret, self.length = [0.0] * len(envs), [0] * len(envs)
        self.record: list[list[np.ndarray] | None] = [None] * len(envs)
        for i in range(len(envs)):
            self._start(i)

    def _start(self, i: int) -> None:
        if self.started >= self.episodes:
            self.active[i] = False
            return
        obs, _ = self.envs[i].reset(seed=self.seed + self.started)
        self.record[i] = [self.envs[i].render()] if self.started < self.videos else None
        self.started += 1
        self.frames[i] = dict(obs)
        self.active[i], self.ret[i], self.length[i] = True, 0.0, 0

    def any_active(self) -> bool:
        return any(self.active)

    def new_chunk(self) -> None:
        """Envs that started a new episode mid-chunk act again from the next chunk on."""
        self.idle = [False] * len(self.envs)

    def batch(self) -> dict[str, np.ndarray]:
        """Current observations of all envs, ``{key: (num_envs, *shape)}``."""
        return _stack(self.frames)

    def step_all(self, actions: np.ndarray) -> list[tuple[int, bool, float, int, list[np.ndarray]]]:
        """Step every active, non-idle env with ``actions[i]``; returns finished episodes."""
        finished = []
        for i, env in enumerate(self.envs):
            if not self.active[i] or self.idle[i]:
                continue
            obs, reward, terminated, truncated, info = env.step(actions[i])
            self.ret[i] += float(reward)
            self.length[i] += 1
            self.frames[i] = dict(obs)
            if self.record[i] is not None:
                self.record[i].append(env.render())
            if terminated or truncated:
                finished.append((i, bool(info.get("is_success", False)), self.ret[i], self.length[i],
                                 self.record[i] or []))
                self.idle[i] = True
                self._start(i)
        return finished
