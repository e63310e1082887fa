"""Evaluating a refinement wrapper's deterministic actor (refinement and HIL use the same episodes)."""

from __future__ import annotations

from typing import Any

import numpy as np

EVAL_SEED = 10_000
"""Evaluation envs reset from this seed (episodes held out from training seeds)."""


def evaluate_wrapper(env: Any, learner: Any, episodes: int, seed: int = EVAL_SEED) -> dict[str, float]:
    """Success rate, mean return and mean episode length (wrapper steps: env steps for a residual, chunks for
    DSRL) of ``learner.act(obs, deterministic=True)`` over ``episodes`` episodes.

    Env ``i`` contributes a fixed quota of its own episodes (``episodes // B``, the first ``episodes % B``
    envs one more), whatever their length. Counting the first ``episodes`` episodes to *finish* instead
    would favour short ones, and with termination on success short episodes are the successes.
    """
    b = env.num_envs
    quota = np.full(b, episodes // b) + (np.arange(b) < episodes % b)
    outcomes: list[list[bool]] = [[] for _ in range(b)]
    returns: list[list[float]] = [[] for _ in range(b)]
    lengths: list[list[int]] = [[] for _ in range(b)]
    running, steps = np.zeros(b), np.zeros(b, int)
    obs = env.reset(seed=seed)
    while any(len(o) < q for o, q in zip(outcomes, quota, strict=True)):
        nxt, reward, term, trunc, info = env.step(learner.act(obs, deterministic=True))
        running += reward
        steps += 1
        for i in np.nonzero(term | trunc)[0]:
            if len(outcomes[i]) < quota[i]:
                outcomes[i].append(bool(info["is_success"][i]))
                returns[i].append(float(running[i]))
                lengths[i].append(int(steps[i]))
            running[i], steps[i] = 0.0, 0
        obs = nxt
    flat_o, flat_r, flat_l = sum(outcomes, []), sum(returns, []), sum(lengths, [])
    return {"success_rate": float(np.mean(flat_o)), "mean_return": float(np.mean(flat_r)),
            "mean_length": float(np.mean(flat_l))}
