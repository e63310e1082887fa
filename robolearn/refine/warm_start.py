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


def dataset_transitions(path: str, env: Any, buffer: ReplayBuffer, n_step: int, gamma: float,
                        relabel: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None) -> int:
    """Replay a robolearn episode dataset through the method's ``relabel``; returns transitions added.

    Works for wrappers whose step is one env step (residual, from-scratch): each episode's observation
    frames ``{key: (1, ...)}`` go through ``relabel`` (the residual adds the base's inputs; the base, if the
    wrapper has one, is reset at each episode's start), its actions are the executed ones. An episode's last
    action has no recorded next observation; it is kept only when the episode succeeded (terminal, no bootstrap).
    """
    from robolearn.datasets.reader import EpisodeDataset

    if hasattr(env, "bound"):
        raise ValueError("DSRL (noise-space SAC) cannot learn from (s, a) demonstrations; use dsrl-na or residual")
    added = 0
    acc = NStepAccumulator(1, n_step, gamma)
    for ep in EpisodeDataset(path):
        obs_keys = [k for k in env.obs_shapes if k in ep.obs]
        base = getattr(env, "base", None)
        if base is not None:
            base.reset()
        steps = len(ep.action)
        frames = [{k: ep.obs[k][t : t + 1] for k in obs_keys} for t in range(steps)]
        labelled = [relabel(f) for f in frames] if relabel is not None else frames
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

