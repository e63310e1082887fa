"""Rollout evaluation of a :class:`~robolearn.core.protocols.Policy` in a registered sim task.

``evaluate(policy, env_id, episodes)`` runs ``num_envs`` environments in lockstep so the policy sees a
batch, executes each returned chunk ``(B, Ta, Da)`` open-loop, and feeds the intermediate observations to
the policy's ``observe`` (when it has one) so its observation history holds consecutive steps. An env
whose episode ends mid-chunk starts its next episode at once and idles until the next replanning.
The envs are one batched env (:func:`robolearn.sim.vector.make_vec_env`, physics in threads; reused across
calls through an :class:`EnvCache`), or with ``batched=False`` single envs from
:func:`robolearn.rollout.make_env` stepped one after another: the same episodes, seeds, policy calls and
outcomes either way (dynamics preset: nominal, randomize or real-gap; visual preset: nominal, train or
held-out); the ``pixels/<camera>`` observations a policy reads are switched on in the env at the policy's image
size.
Success is ``info["is_success"]`` at the end of the episode; rates carry a 95% Wilson interval. Outcomes
are listed in the order episodes end, each with its reset seed (:attr:`EvalResult.seeds`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robolearn.core.protocols import Policy
from robolearn.core.stats import format_rate, wilson_interval
from robolearn.rollout import EnvConfig, write_video


@dataclass
class EvalResult:
    """Per-episode outcomes of an evaluation."""

    env_id: str
    successes: list[bool] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    """Reset seed of each episode (``seed + i`` for episode ``i``), in the order of the other lists."""
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
    shapes = getattr(policy, "shapes", None) or {}
    cams = [k.removeprefix("pixels/") for k in shapes if k.startswith("pixels/")]
    if not cams:
        return {}
    sizes = {tuple(shapes[f"pixels/{c}"][:2]) for c in cams}
    if len(sizes) > 1:
        raise ValueError(f"policy cameras {cams} have different image sizes {sorted(sizes)}")
    (h, w), = sizes
    return {"cameras": cams, "width": w, "height": h}


def camera_frame(scene: np.ndarray, obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """A video frame: the scene render ``(H, W, 3)`` with every ``pixels/<camera>`` frame of ``obs`` (what the
    policy saw, visual randomization included) to its right, scaled to height ``H``; the scene alone without."""
    views = [obs[k] for k in sorted(obs) if k.startswith("pixels/")]
    if not views:
        return scene
    import cv2

    h = scene.shape[0]
    tiles = [cv2.resize(np.asarray(v), (round(v.shape[1] * h / v.shape[0]), h), interpolation=cv2.INTER_NEAREST)
             for v in views]
    return np.concatenate([scene, *tiles], axis=1)


def _stack(frames: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([f[k] for f in frames]) for k in frames[0]}


@dataclass(frozen=True)
class _EnvKey:
    """What decides an evaluation env: reused only for the same task, size, dynamics, pixels and rendering."""

    env_id: str
    num_envs: int
    dynamics: str
    visual: str
    task: str
    """``repr`` of the sorted task settings (their values may be lists)."""
    pixels: str
    render: str | None


class EnvCache:
    """Batched evaluation envs built once and reused by later :func:`evaluate` calls with the same settings
    (the pipeline evaluates several policies on the same dynamics). Holds at most ``max_envs``; the oldest
    is closed to make room. Close it when done."""

    def __init__(self, max_envs: int = 4) -> None:
        self.max_envs = max_envs
        self._envs: dict[_EnvKey, gym.vector.VectorEnv] = {}

    def get(self, key: _EnvKey, build: Callable[[], gym.vector.VectorEnv]) -> gym.vector.VectorEnv:
        """The env of ``key``, built by ``build`` the first time."""
        if key not in self._envs:
            while len(self._envs) >= self.max_envs:
                self._envs.pop(next(iter(self._envs))).close()
            self._envs[key] = build()
        return self._envs[key]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def _env_kwargs(key: _EnvKey, task: dict[str, Any], policy: Policy) -> dict[str, Any]:
    from robolearn.sim.randomization import load_dynamics_preset
    from robolearn.sim.visual import visual_kwargs

    kwargs = {"randomization": load_dynamics_preset(key.env_id, key.dynamics),
              "pixels": pixel_config(policy) or None, **task, **visual_kwargs(key.env_id, key.visual)}
    return kwargs | ({"render_mode": key.render} if key.render else {})


def _make_vec(key: _EnvKey, task: dict[str, Any], policy: Policy) -> gym.vector.VectorEnv:
    from robolearn.sim.vector import make_vec_env

    return make_vec_env(key.env_id, key.num_envs, env_kwargs=_env_kwargs(key, task, policy))


def _make_single(key: _EnvKey, task: dict[str, Any], policy: Policy) -> list[gym.Env]:
    from robolearn.rollout import make_env

    cfg = EnvConfig(id=key.env_id, task=dict(task), dynamics=key.dynamics, pixels=pixel_config(policy),
                    visual=key.visual)
    return [make_env(cfg, render_mode=key.render) for _ in range(key.num_envs)]


def evaluate(
    policy: Policy,
    env_id: str,
    episodes: int = 100,
    seed: int = 0,
    num_envs: int = 8,
    dynamics: str = "nominal",
    task: dict[str, Any] | None = None,
    visual: str = "nominal",
    video_dir: str | Path | None = None,
    videos: int = 0,
    progress: bool = True,
    envs: EnvCache | None = None,
    batched: bool = True,
) -> EvalResult:
    """Run ``episodes`` episodes (episode ``i`` reset with seed ``seed + i``) and collect outcomes.

    ``dynamics`` names a preset of ``configs/dynamics/`` (``nominal``, ``randomize``, ``real-gap``), ``visual``
    one of ``configs/visual/`` (``nominal``, ``train``, ``held-out``: what the cameras see);
    ``task`` holds env settings (``action_mode``...); the first ``videos`` episodes are written as MP4
    files under ``video_dir`` (only those episodes are rendered). ``batched`` steps the envs through one
    batched env (:func:`robolearn.sim.vector.make_vec_env`, physics in threads), taken from ``envs`` when
    given (built once, reused by later calls) and otherwise built and closed here; ``batched=False`` steps
    ``num_envs`` single envs one after another. Both run the same episodes with the same seeds and return
    the same outcomes.
    """
    from tqdm import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    n = min(num_envs, episodes)
    render = "rgb_array" if video_dir is not None and videos > 0 else None
    task = dict(task or {})
    key = _EnvKey(env_id, n, dynamics, visual, repr(sorted(task.items())), repr(pixel_config(policy)), render)
    own = envs is None and batched
    cache = EnvCache() if own else envs
    result = EvalResult(env_id)
    n_videos = videos if render else 0
    state: _Rollouts | _BatchedRollouts
    if batched:
        state = _BatchedRollouts(cache.get(key, lambda: _make_vec(key, task, policy)), episodes, seed, n_videos)
    else:
        state = _Rollouts(_make_single(key, task, policy), episodes, seed, n_videos)
    policy.reset()
    bar = tqdm(total=episodes, disable=not progress, desc=f"eval {env_id}")
    try:
        while state.any_active():
            state.new_chunk()
            chunk = policy.act(state.batch())
            for j in range(chunk.shape[1]):
                for i, episode_seed, success, ret, length, frames in state.step_all(chunk[:, j]):
                    policy.reset([i])
                    result.successes.append(success)
                    result.seeds.append(episode_seed)
                    result.returns.append(ret)
                    result.lengths.append(length)
                    if frames:
                        name = f"episode_{len(result.successes) - 1:03d}.mp4"
                        result.videos.append(write_video(frames, Path(video_dir) / name, state.fps))  # type: ignore[arg-type]
                    bar.update(1)
                if j < chunk.shape[1] - 1 and hasattr(policy, "observe") and state.any_active():
                    policy.observe(state.batch())
    finally:
        bar.close()
        if own:
            cache.close()
        elif not batched:
            state.close()
    return result


class _Rollouts:
    """Bookkeeping of ``len(envs)`` single environments sharing one batched policy, stepped one after another."""

    def __init__(self, envs: list[gym.Env], episodes: int, seed: int, videos: int) -> None:
        self.envs, self.episodes, self.seed = envs, episodes, seed
        self.videos = videos
        self.started = 0
        self.active = [False] * len(envs)
        self.idle = [False] * len(envs)
        self.frames: list[dict] = [{}] * len(envs)
        self.ret, self.length = [0.0] * len(envs), [0] * len(envs)
        self.seeds = [0] * len(envs)
        """Reset seed of each env's current episode."""
        self.record: list[list[np.ndarray] | None] = [None] * len(envs)
        for i in range(len(envs)):
            self._start(i)

    def _start(self, i: int) -> None:
        if self.started >= self.episodes:
            self.active[i] = False
            return
        self.seeds[i] = self.seed + self.started
        obs, _ = self.envs[i].reset(seed=self.seeds[i])
        self.record[i] = [camera_frame(self.envs[i].render(), obs)] if self.started < self.videos else None
        self.started += 1
        self.frames[i] = dict(obs)
        self.active[i], self.ret[i], self.length[i] = True, 0.0, 0

    @property
    def fps(self) -> float:
        """Frame rate of the videos."""
        return float(self.envs[0].metadata.get("render_fps", 20))

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def any_active(self) -> bool:
        return any(self.active)

    def new_chunk(self) -> None:
        """Envs that started a new episode mid-chunk act again from the next chunk on."""
        self.idle = [False] * len(self.envs)

    def batch(self) -> dict[str, np.ndarray]:
        """Current observations of all envs, ``{key: (num_envs, *shape)}``."""
        return _stack(self.frames)

    def step_all(self, actions: np.ndarray) -> list[tuple[int, int, bool, float, int, list[np.ndarray]]]:
        """Step every active, non-idle env with ``actions[i]``; returns finished episodes
        ``(env, seed, success, return, length, frames)``."""
        finished = []
        for i, env in enumerate(self.envs):
            if not self.active[i] or self.idle[i]:
                continue
            obs, reward, terminated, truncated, info = env.step(actions[i])
            self.ret[i] += float(reward)
            self.length[i] += 1
            self.frames[i] = dict(obs)
            if self.record[i] is not None:
                self.record[i].append(camera_frame(env.render(), obs))
            if terminated or truncated:
                finished.append((i, self.seeds[i], bool(info.get("is_success", False)), self.ret[i],
                                 self.length[i], self.record[i] or []))
                self.idle[i] = True
                self._start(i)
        return finished


class _BatchedRollouts:
    """:class:`_Rollouts`' schedule on one same-step-autoreset vector env, stepped as a batch.

    Every env is stepped at every step (the vector env has no per-env step), so an env that finished its
    episode mid-chunk, and is idle until the next chunk as in :class:`_Rollouts`, is reset at once with its
    next episode's seed (that first observation is what the policy sees while it idles), stepped with
    actions nobody reads, and reset again with the same seed when the next chunk starts: reset from a seed
    is deterministic, so each episode runs as in the serial schedule. Outcomes, seeds and the policy's calls
    are those of :class:`_Rollouts`. A video's last frame is the one before the episode's final step (the
    vector env resets a finished env inside its step).
    """

    def __init__(self, vec: gym.vector.VectorEnv, episodes: int, seed: int, videos: int) -> None:
        self.vec, self.episodes, self.seed, self.videos = vec, episodes, seed, videos
        n = self.n = vec.num_envs
        obs, _ = vec.reset(seed=[seed + i for i in range(n)])
        self.frames = {k: np.array(v, copy=True) for k, v in obs.items()}
        self.started = n
        self.active, self.idle = np.ones(n, bool), np.zeros(n, bool)
        self.pending: dict[int, int] = {}
        """Env -> seed of the episode it was reset to mid-chunk; reset again when the next chunk starts."""
        self.dirty = np.zeros(n, bool)
        """Pending envs stepped since that reset."""
        self.ret, self.length = np.zeros(n), np.zeros(n, int)
        self.seeds = [seed + i for i in range(n)]
        """Reset seed of each env's current episode."""
        self.record: list[list[np.ndarray] | None] = [[self._render(i)] if i < videos else None for i in range(n)]

    @property
    def fps(self) -> float:
        """Frame rate of the videos."""
        return float(self.vec.metadata.get("render_fps", 20))

    def _render(self, i: int) -> np.ndarray:
        scene = self.vec.envs[i].render() if hasattr(self.vec, "envs") else self.vec.render()[i]
        return camera_frame(scene, {k: v[i] for k, v in self.frames.items() if k.startswith("pixels/")})

    def any_active(self) -> bool:
        return bool(self.active.any())

    def batch(self) -> dict[str, np.ndarray]:
        """Current observations of all envs, ``{key: (num_envs, *shape)}``."""
        return {k: v.copy() for k, v in self.frames.items()}

    def new_chunk(self) -> None:
        """Envs that started a new episode mid-chunk act again from the next chunk on, from that episode's
        first state (reset again from its seed if they were stepped since)."""
        self.idle[:] = False
        redo = {i: s for i, s in self.pending.items() if self.dirty[i]}
        if redo:
            self._reset(redo)
        self.pending.clear()
        self.dirty[:] = False

    def _reset(self, seeds: dict[int, int]) -> dict[str, np.ndarray]:
        mask = np.zeros(self.n, bool)
        mask[list(seeds)] = True
        obs, _ = self.vec.reset(seed=[seeds.get(i) for i in range(self.n)], options={"reset_mask": mask})
        return obs

    def step_all(self, actions: np.ndarray) -> list[tuple[int, int, bool, float, int, list[np.ndarray]]]:
        """Step the batch with ``actions`` ``(num_envs, Da)``; returns the episodes of active, non-idle envs
        that finished, in env order, as ``(env, seed, success, return, length, frames)``."""
        stepping = self.active & ~self.idle
        self.dirty |= np.isin(np.arange(self.n), list(self.pending))
        obs, reward, terminated, truncated, info = self.vec.step(np.asarray(actions))
        done = (terminated | truncated) & stepping
        success = np.asarray(info.get("final_info", {}).get("is_success", np.zeros(self.n, bool)))
        finished, restart = [], {}
        for i in np.flatnonzero(stepping):
            self.ret[i] += float(reward[i])
            self.length[i] += 1
            if not done[i]:
                for k in self.frames:
                    self.frames[k][i] = obs[k][i]
                if self.record[i] is not None:
                    self.record[i].append(self._render(i))
                continue
            finished.append((int(i), self.seeds[i], bool(success[i]), float(self.ret[i]), int(self.length[i]),
                             self.record[i] or []))
            self.idle[i] = True
            if self.started < self.episodes:
                restart[int(i)] = (self.seed + self.started, self.started)
                self.started += 1
            else:  # no episode left: the env keeps its last observation, as a serial env does
                self.active[i] = False
                for k in self.frames:
                    self.frames[k][i] = info["final_obs"][i][k]
        if restart:
            first = self._reset({i: s for i, (s, _) in restart.items()})
            for i, (s, episode) in restart.items():
                for k in self.frames:
                    self.frames[k][i] = first[k][i]
                self.record[i] = [self._render(i)] if episode < self.videos else None
                self.pending[i], self.seeds[i], self.ret[i], self.length[i] = s, s, 0.0, 0
        return finished
