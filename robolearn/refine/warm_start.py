"""Filling replay before learning: demonstrations (offline buffer) and WSRL warm start (online buffer).

Demonstrations come either from a robolearn episode dataset (``datasets/``) or from rolling out a named
policy (``expert:noise=0``) through the refinement wrapper with its actions swapped in (``override``), so
the wrapper relabels them exactly as it would label an intervention: the residual wrapper stores the
executed action next to the base action of that observation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from robolearn.core.protocols import Policy
from robolearn.rl.replay import NStepAccumulator, ReplayBuffer


def base_actor_action(env: Any, rng: np.random.Generator) -> np.ndarray:
    """Actor actions ``(B, Da)`` that reproduce the base policy: zero residual, or Gaussian noise for DSRL."""
    shape = (env.num_envs, env.action_dim)
    if hasattr(env, "bound"):
        return np.clip(rng.standard_normal(shape) / env.bound, -1, 1).astype(np.float32)
    return np.zeros(shape, np.float32)


def collect_transitions(env: Any, buffer: ReplayBuffer, acc: NStepAccumulator, episodes: int,
                        policy: Policy | None = None, rng: np.random.Generator | None = None,
                        seed: int | None = None) -> dict[str, float]:
    """Roll out until ``episodes`` episodes ended, adding n-step transitions to ``buffer``.

    With ``policy`` its physical actions are executed (``override``); without, the base policy acts
    (:func:`base_actor_action`). Returns ``{"episodes", "successes", "env_steps"}``.
    """
    if episodes <= 0:
        return {"episodes": 0, "successes": 0, "env_steps": 0}
    rng = rng or np.random.default_rng(seed)
    obs = env.reset(seed=seed)
    if policy is not None:
        policy.reset()
    acc.reset()
    done_eps = successes = steps = 0
    while done_eps < episodes:
        action = base_actor_action(env, rng)
        override = None
        if policy is not None:
            override = np.asarray(policy.act(obs), np.float32)
            override = override[:, 0] if override.shape[1] == 1 and not hasattr(env, "bound") else override
        nxt, reward, term, trunc, info = env.step(action, override)
        out = acc.push(obs, info["critic_action"], reward, term, trunc, info["final_obs"])
        if out is not None:
            buffer.add(out["obs"], out["action"], out["reward"], out["discount"], out["next_obs"])
        done = term | trunc
        steps += info.get("env_steps", env.num_envs)
        done_eps += int(done.sum())
        successes += int(info["is_success"][done].sum())
        if policy is not None and done.any():
            policy.reset(np.nonzero(done)[0])
        obs = nxt
    acc.reset()
    return {"episodes": done_eps, "successes": successes, "env_steps": steps}


Frame = dict[str, np.ndarray]
"""One observation frame ``{key: (1, *shape)}``."""


def dataset_transitions(path: str, env: Any, buffer: ReplayBuffer, n_step: int, gamma: float,
                        relabel: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
                        batch: int = 128, progress: bool = True) -> int:
    """Replay a robolearn episode dataset through the method's ``relabel``; returns transitions added.

    Works for wrappers whose step is one env step (residual, from-scratch): each episode's observation
    frames ``{key: (1, ...)}`` go through ``relabel`` (the residual adds the base's inputs; the base, if the
    wrapper has one, is reset at each episode's start), its actions are the executed ones. An episode's last
    action has no recorded next observation; it is kept only when the episode succeeded (terminal, no bootstrap).
    ``batch`` episodes are relabelled side by side, one per batch row (:func:`relabel_episodes`), with a
    progress bar over the frames.
    """
    from robolearn.datasets.reader import EpisodeDataset

    if hasattr(env, "bound"):
        raise ValueError("DSRL (noise-space SAC) cannot learn from (s, a) demonstrations; use dsrl-na or residual")
    episodes = list(EpisodeDataset(path))
    base_keys = getattr(getattr(env, "base", None), "shapes", None) or {}  # what the base reads to relabel
    obs_keys = [k for k in episodes[0].obs if k in env.obs_shapes or k in base_keys] if episodes else []
    observations = [{k: ep.obs[k] for k in obs_keys} for ep in episodes]
    labelled_episodes = relabel_episodes(observations, env, relabel, batch, progress)
    added = 0
    acc = NStepAccumulator(1, n_step, gamma)
    for ep, labelled in zip(episodes, labelled_episodes, strict=True):
        steps = len(ep.action)
        for t in range(steps):
            last = t == steps - 1
            if last and not bool(ep.is_success[-1]):
                break
            nxt = labelled[t] if last else labelled[t + 1]
            action = np.clip(env.scaler.normalize(ep.action[t : t + 1]), -1, 1)
            out = acc.push(labelled[t], action, ep.reward[t : t + 1], np.array([last]), np.array([False]), nxt)
            if out is not None:
                buffer.add(out["obs"], out["action"], out["reward"], out["discount"], out["next_obs"])
                added += len(out["action"])
        acc.reset()
    return added


def relabel_episodes(episodes: list[dict[str, np.ndarray]], env: Any,
                     relabel: Callable[[Frame], Frame] | None, batch: int = 128,
                     progress: bool = True) -> list[list[Frame]]:
    """Each episode's frames ``{key: (1, ...)}`` (from its observations ``{key: (T, ...)}``) through ``relabel``.

    ``relabel`` calls the wrapper's base as ``env.base`` (if it has one). The reference is one frame per
    call, the base reset at each episode's start. A base whose batch rows are independent
    (:func:`rows_are_independent`) instead relabels ``batch`` episodes at once, one per row, each row reset
    when its next episode starts, as a vector env's rows are; a generative base gets, per frame, the initial
    noise it would have drawn from its generator in the reference order, so its outputs and its generator's
    state afterwards are the reference's (up to the float rounding of batched matrix products, ~1e-6).
    """
    from tqdm import tqdm

    base = getattr(env, "base", None)
    frames = [[{k: v[t : t + 1] for k, v in ep.items()} for t in range(_length(ep))] for ep in episodes]
    if relabel is None or not episodes:
        return frames
    bar = tqdm(total=sum(map(len, frames)), disable=not progress, desc="relabel demonstrations", unit="frame")
    try:
        if batch > 1 and rows_are_independent(base):
            return _relabel_rows(episodes, env, relabel, batch, bar)
        out = []
        for ep_frames in frames:
            if base is not None:
                base.reset()
            out.append([relabel(f) for f in ep_frames])
            bar.update(len(ep_frames))
        return out
    finally:
        bar.close()


def rows_are_independent(base: Any) -> bool:
    """Whether ``base`` treats the rows of a batch as separate envs with their own observation history
    (a chunk policy: ``observe`` and the tensor-level ``infer``) and is deterministic given its initial noise
    (no DDPM sampler, which draws fresh noise at every denoising step)."""
    if base is None or not (callable(getattr(base, "observe", None)) and callable(getattr(base, "infer", None))):
        return False
    if getattr(base, "noise_shape", None) is None:
        return True
    scheduler = getattr(getattr(getattr(base, "cfg", None), "diffusion", None), "scheduler", None)
    return callable(getattr(base, "sample_noise", None)) and scheduler in ("ddim", "dpmsolver")


def _length(ep: dict[str, np.ndarray]) -> int:
    return len(next(iter(ep.values())))


class _NoiseFeed:
    """``base`` whose ``act`` uses the initial noise set in :attr:`noise` (rows ``(B, Tp, Da)``)."""

    def __init__(self, base: Any) -> None:
        self.base, self.noise = base, None

    def act(self, obs: Any, noise: np.ndarray | None = None) -> np.ndarray:
        return self.base.act(obs, self.noise if noise is None else noise)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


def _reference_noise(base: Any, frames: int) -> np.ndarray | None:
    """``(frames, Tp, Da)``: the noise the base draws for one frame per call, in that order (None: none)."""
    if getattr(base, "noise_shape", None) is None:
        return None
    return np.concatenate([np.asarray(base.sample_noise(1).cpu()) for _ in range(frames)])


def _relabel_rows(episodes: list[dict[str, np.ndarray]], env: Any, relabel: Callable[[Frame], Frame],
                  batch: int, bar: Any) -> list[list[Frame]]:
    """:func:`relabel_episodes` with ``min(batch, episodes)`` episodes side by side, one per batch row; while it
    runs, ``env.base`` is a :class:`_NoiseFeed` of the base that hands it each row's reference noise."""
    base = env.base
    lengths = [_length(ep) for ep in episodes]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = {k: np.concatenate([ep[k] for ep in episodes]) for k in episodes[0]}
    noise = _reference_noise(base, int(offsets[-1]))
    rows = min(batch, len(episodes))
    episode_of = np.arange(rows)
    """Episode of each row (-1: none left; the row repeats another's frame and its outputs are dropped)."""
    t_of = np.zeros(rows, np.int64)
    out: list[list[Frame]] = [[] for _ in episodes]
    feed = _NoiseFeed(base)
    base.reset()
    next_episode = rows
    env.base = feed
    try:
        while (episode_of >= 0).any():
            live = np.flatnonzero(episode_of >= 0)
            index = np.where(episode_of >= 0, offsets[np.maximum(episode_of, 0)] + t_of, offsets[episode_of[live[0]]])
            if noise is not None:
                feed.noise = noise[index]
            labelled = relabel({k: v[index] for k, v in flat.items()})
            for r in live:
                e = episode_of[r]
                out[e].append({k: np.array(v[r : r + 1]) for k, v in labelled.items()})
                t_of[r] += 1
                if t_of[r] == lengths[e]:
                    episode_of[r] = next_episode if next_episode < len(episodes) else -1
                    next_episode += 1
                    t_of[r] = 0
                    base.reset([r])
            bar.update(len(live))
    finally:
        env.base = base
    base.reset()
    return out

