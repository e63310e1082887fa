"""Simulation throughput of PandaLift: physics ceiling, single-env overhead, batched envs vs SyncVectorEnv.

Run: ``python bench/sim_throughput.py`` (about a minute and a half on 2 cores; ``--quick`` for a smoke run).

Prints, all measured in this one run:

1. **ceiling**: raw ``mujoco.mj_step`` steps/s of the task's own model, replaying the controls that the
   scripted expert's episodes produced (same states, contacts and grasps as the env run; no Python
   beyond setting ``data.ctrl`` once per control step).
2. **single env**: ``env.step`` control steps/s on those same episodes (the recorded expert actions, so
   the expert's own Python is not counted), converted to physics steps/s, and the Python overhead as a
   fraction of the physics time: ``(t_env - t_physics) / t_physics`` (target < 20%).
3. **batched**: env steps/s (``num_envs`` x batched steps per second, autoresets included) of
   ``make_vec_env(backend="threads")`` against gymnasium's ``SyncVectorEnv`` of the same env, at 1, 8
   and 32 envs, with uniform random actions (target >= 1.5x). The two are measured alternately, several
   rounds, and the median of each is kept, because a shared 2-core machine's speed drifts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.sim.arm.experts import LiftExpert
from robolearn.sim.vector import make_vec_env

ENV_ID = "robolearn/PandaLift-v0"
STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS


@dataclass
class Episode:
    """One recorded expert episode: initial physics state, actions (T, 5) and resulting ctrl (T, nu)."""

    seed: int
    state: np.ndarray
    actions: np.ndarray
    ctrls: np.ndarray


def record_episodes(env: gym.Env, n: int) -> list[Episode]:
    """Run the clean scripted expert for ``n`` seeded episodes, recording what replays need."""
    base = env.unwrapped
    expert = LiftExpert(noise=0.0, seed=0)
    episodes = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        state = np.empty(mujoco.mj_stateSize(base.model, STATE))
        mujoco.mj_getState(base.model, base.data, state, STATE)
        actions, ctrls, done = [], [], False
        while not done:
            action = expert.act({k: v[None] for k, v in obs.items()})[0, 0]
            obs, _, terminated, truncated, _ = env.step(action)
            actions.append(action)
            ctrls.append(base.data.ctrl.copy())
            done = terminated or truncated
        episodes.append(Episode(seed, state, np.array(actions), np.array(ctrls)))
    return episodes


def time_raw_physics(env: gym.Env, episodes: list[Episode]) -> tuple[float, int]:
    """Seconds spent in ``mj_step`` replaying the episodes' controls, and the physics steps taken."""
    base = env.unwrapped
    model, data, n_sub = base.model, base.data, base.n_substeps
    total, steps = 0.0, 0
    for ep in episodes:
        mujoco.mj_setState(model, data, ep.state, STATE)
        mujoco.mj_forward(model, data)
        start = time.perf_counter()
        for ctrl in ep.ctrls:
            data.ctrl[:] = ctrl
            mujoco.mj_step(model, data, nstep=n_sub)
        total += time.perf_counter() - start
        steps += len(ep.ctrls) * n_sub
    return total, steps


def time_env_steps(env: gym.Env, episodes: list[Episode]) -> tuple[float, int]:
    """Seconds spent in ``env.step`` replaying the episodes' actions (resets not timed), and the steps."""
    total, steps = 0.0, 0
    for ep in episodes:
        env.reset(seed=ep.seed)
        start = time.perf_counter()
        for action in ep.actions:
            env.step(action)
        total += time.perf_counter() - start
        steps += len(ep.actions)
    return total, steps


def batched_rate(vec: gym.vector.VectorEnv, actions: np.ndarray, seconds: float) -> float:
    """Env steps/s of ``vec`` stepping the ``(K, num_envs, 5)`` random actions for about ``seconds``."""
    vec.step(actions[0])  # warm-up (thread start, caches)
    steps, start, k = 0, time.perf_counter(), 1
    while True:
        vec.step(actions[k % len(actions)])
        steps, k = steps + 1, k + 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            return steps * vec.num_envs / elapsed


def bench_single(n_episodes: int, repeats: int) -> None:
    env = gym.make(ENV_ID)
    episodes = record_episodes(env, n_episodes)
    # Per episode, the fastest of `repeats` alternating replays: transient slowdowns of a shared machine
    # then hit neither measurement.
    t_raw = t_env = 0.0
    n_phys = n_ctrl = 0
    for ep in episodes:
        rounds = [(time_raw_physics(env, [ep]), time_env_steps(env, [ep])) for _ in range(repeats)]
        t_raw += min(r[0][0] for r in rounds)
        t_env += min(r[1][0] for r in rounds)
        n_phys, n_ctrl = n_phys + rounds[0][0][1], n_ctrl + rounds[0][1][1]
    n_sub = env.unwrapped.n_substeps
    ceiling = n_phys / t_raw
    ctrl_rate = n_ctrl / t_env
    overhead = (t_env - t_raw) / t_raw
    print(f"{ENV_ID}: {n_sub} physics steps ({env.unwrapped.model.opt.timestep * 1e3:.1f} ms) per control "
          f"step; {n_episodes} expert episodes, {n_ctrl} control steps, fastest of {repeats} replays")
    print(f"  ceiling   raw mj_step             {ceiling:10.0f} physics steps/s")
    print(f"  single    env.step                {ctrl_rate:10.0f} control steps/s = {ctrl_rate * n_sub:.0f} "
          f"physics steps/s ({ctrl_rate * n_sub / ceiling:.0%} of ceiling)")
    print(f"  overhead  Python per control step {(t_env - t_raw) / n_ctrl * 1e6:10.0f} us = {overhead:.1%} "
          f"of physics time (target < 20%: {'met' if overhead < 0.2 else 'MISSED'})")
    env.close()


def bench_batched(sizes: list[int], seconds: float, rounds: int) -> None:
    cpus = len(os.sched_getaffinity(0))
    print(f"batched env steps/s, random actions, {cpus} usable CPUs; {rounds} alternating rounds of "
          f"{seconds:g} s each; medians, and the median of the per-round ratios")
    print(f"  {'envs':>5} {'SyncVectorEnv':>14} {'threads':>10} {'ratio':>7}")
    for n in sizes:
        vecs = {b: make_vec_env(ENV_ID, n, seed=0, backend=b) for b in ("sync", "threads")}
        space = vecs["sync"].single_action_space
        rng = np.random.default_rng(0)
        actions = rng.uniform(space.low, space.high, size=(64, n, *space.shape)).astype(np.float32)
        rates: dict[str, list[float]] = {b: [] for b in vecs}
        for vec in vecs.values():
            vec.reset()
        for _ in range(rounds):
            for backend, vec in vecs.items():
                rates[backend].append(batched_rate(vec, actions, seconds))
        ratio = statistics.median(t / s for s, t in zip(rates["sync"], rates["threads"], strict=True))
        sync, threads = (statistics.median(rates[b]) for b in ("sync", "threads"))
        note = "" if n == 1 else f"  (target >= 1.5x: {'met' if ratio >= 1.5 else 'MISSED'})"
        print(f"  {n:>5} {sync:>14.0f} {threads:>10.0f} {ratio:>6.2f}x{note}")
        for vec in vecs.values():
            vec.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke test")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.quick:
        bench_single(n_episodes=2, repeats=1)
        bench_batched([1, 4], seconds=0.2, rounds=1)
    else:
        bench_single(n_episodes=10, repeats=3)
        bench_batched([1, 8, 32], seconds=1.0, rounds=8)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
