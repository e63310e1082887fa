"""Offline data for chunked critics (DSRL-NA): recorded (s, a, r, s') steps cut into action-chunk transitions.

DSRL-NA's action-space critic ``Q_A(s, chunk)`` scores the executed chunk ``(Ta * Da,)``, normalized, as
the noise-steering wrapper stores it. Demonstrations are single steps of a closed-loop demonstrator, so
every step ``t`` of an episode starts one transition (a sliding window): the chunk ``a[t : t + Ta]``, the
summed reward, and ``s[t + Ta]``, discounted by ``gamma`` once (the wrapper's ``gamma`` applies per chunk).
A window that runs past the episode's end is padded with the wrapper's no-op action, as the wrapper does;
it is terminal (no bootstrap) when the episode ended in success, and dropped otherwise (the state after a
time-out is not part of a recorded episode).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from robolearn.core.protocols import Policy
from robolearn.rl.replay import ReplayBuffer


@dataclass
class StepEpisode:
    """One episode of ``T`` steps: ``obs[key]`` ``(T, ...)``, ``action`` ``(T, Da)`` physical, ``reward`` ``(T,)``.

    ``final_obs`` (the state after the last action) is known for rollouts, not for recorded datasets.
    """

    obs: dict[str, np.ndarray]
    action: np.ndarray
    reward: np.ndarray
    success: bool
    final_obs: dict[str, np.ndarray] | None = None


def chunk_transitions(env: Any, episodes: Iterable[StepEpisode], buffer: ReplayBuffer, gamma: float) -> int:
    """Add every episode's sliding-window chunk transitions to ``buffer``; returns how many were added.

    ``env`` is a chunk-storing :class:`~robolearn.refine.noise_steering.NoiseSteeringVecEnv` (DSRL-NA):
    its ``critic_action_dim`` is ``Ta * Da``, its ``scaler`` normalizes and its ``noop`` pads.
    """
    da = int(np.prod(env.scaler.low.shape))
    ta = env.critic_action_dim // da
    keys = list(env.obs_shapes)
    added = 0
    for ep in episodes:
        missing = sorted(set(keys) - set(ep.obs))
        if missing:
            raise ValueError(f"offline episodes lack the observation keys {missing} that the critic needs")
        t_len = len(ep.action)
        padded = np.concatenate([ep.action, np.repeat(env.noop[None], ta, 0)]).astype(np.float32)
        rewards = np.concatenate([ep.reward, np.zeros(ta, np.float32)])
        starts, nxt_obs, discounts = [], [], []
        for t in range(t_len):
            end = t + ta
            if end < t_len:
                nxt = {k: ep.obs[k][end] for k in keys}
                discount = gamma
            elif end == t_len and ep.final_obs is not None and not ep.success:
                nxt, discount = {k: ep.final_obs[k] for k in keys}, gamma
            elif ep.success:  # terminal inside (or at the end of) the window: no bootstrap
                nxt, discount = {k: ep.obs[k][t_len - 1] for k in keys}, 0.0
            else:
                continue
            starts.append(t)
            nxt_obs.append(nxt)
            discounts.append(discount)
        if not starts:
            continue
        idx = np.asarray(starts)
        chunks = np.stack([padded[t : t + ta] for t in idx])  # (N, Ta, Da)
        norm = np.clip(env.scaler.normalize(chunks), -1, 1).reshape(len(idx), -1)
        buffer.add({k: ep.obs[k][idx] for k in keys}, norm,
                   np.array([rewards[t : t + ta].sum() for t in idx], np.float32),
                   np.asarray(discounts, np.float32), {k: np.stack([n[k] for n in nxt_obs]) for k in keys})
        added += len(idx)
    return added


def rollout_episodes(venv: Any, policy: Policy, episodes: int, seed: int) -> list[StepEpisode]:
    """Run ``policy`` closed loop (the first action of each chunk, every step) on a vector env until
    ``episodes`` episodes ended; returns them with their final observations."""
    obs, _ = venv.reset(seed=seed)
    policy.reset()
    n = venv.num_envs
    steps: list[list[tuple[dict[str, np.ndarray], np.ndarray, float]]] = [[] for _ in range(n)]
    out: list[StepEpisode] = []
    while len(out) < episodes:
        action = np.asarray(policy.act(obs), np.float32)[:, 0]
        nxt, reward, term, trunc, info = venv.step(action)
        for i in range(n):
            steps[i].append(({k: np.asarray(v[i]) for k, v in obs.items()}, action[i], float(reward[i])))
            if term[i] or trunc[i]:
                seq = steps[i]
                out.append(StepEpisode(
                    obs={k: np.stack([s[0][k] for s in seq]) for k in seq[0][0]},
                    action=np.stack([s[1] for s in seq]), reward=np.array([s[2] for s in seq], np.float32),
                    success=bool(np.asarray(info["final_info"]["is_success"])[i]),
                    final_obs={k: np.asarray(v) for k, v in info["final_obs"][i].items()}))
                steps[i] = []
                policy.reset([i])
        obs = nxt
    return out[:episodes]


def dataset_episodes(path: str) -> Iterable[StepEpisode]:
    """The committed episodes of a robolearn dataset as :class:`StepEpisode` (no final observations)."""
    from robolearn.datasets.reader import EpisodeDataset

    for ep in EpisodeDataset(path):
        yield StepEpisode(obs=ep.obs, action=ep.action, reward=ep.reward, success=bool(ep.is_success[-1]))


def fill_chunk_offline(env: Any, buffer: ReplayBuffer, data: Any) -> int:
    """Demonstrations (``data``, a method's :class:`~robolearn.refine.methods.base.OfflineData`: a dataset or
    a demonstrating policy rolled out on ``env.venv``) into ``buffer`` as executed-chunk transitions."""
    if data.is_dataset:
        episodes: Iterable[StepEpisode] = dataset_episodes(data.demos)
    else:
        demo = data.load_policy(data.demos, data.seed)
        episodes = rollout_episodes(env.venv, demo, data.episodes, seed=data.seed)
    return chunk_transitions(env, episodes, buffer, data.gamma)
