"""Simulation throughput of one task per embodiment: raw physics, single-env overhead, batched envs, native ceiling.

Run from the repository root: ``PYTHONPATH=. python bench/sim_throughput.py`` (about three minutes on 2
cores; ``--quick`` for a smoke run). ``PYTHONPATH=.`` makes a script under ``bench/`` import this checkout's
``robolearn`` rather than an installed one.

For PandaLift (arm), G1BimanualLift (humanoid) and QuadHover (quadrotor), all measured in this one run:

1. **raw physics**: the physics of the scripted expert's own episodes replayed by ``mujoco.rollout`` on one
   thread, with no Python between physics steps: the controls and applied forces of every physics step
   (the quadrotor's rate loop and drag change them at each one) are recorded while the env runs, then
   replayed from the episode's initial state and solver warm-start, so the replay takes the same states,
   contacts and grasps as the env.
2. **single env**: ``env.step`` on those episodes (the recorded expert actions, so the expert's own Python
   is not counted): its rate as a fraction of raw physics (``t_physics / t_env``; QuadHover target >= 0.6)
   and its Python overhead ``(t_env - t_physics) / t_physics`` (PandaLift target < 20%); and, the figure
   least moved by a loaded machine, each phase of ``step`` (``pre_step``, ``physics_step``, ``post_step``)
   and ``mj_step`` alone timed from the same restored states, fastest of several.
3. **native ceiling**: ``mujoco.rollout`` with 2 threads over a batch of those episodes, in env steps/s.
4. **batched**: env steps/s (``num_envs`` x batched steps per second, autoresets included) of
   ``make_vec_env`` with ``backend="threads"`` and ``"processes"`` against gymnasium's ``SyncVectorEnv``
   (``"sync"``), with seeded random actions (around hover for the quadrotor); each beside the ceiling.

The machine is shared (2 cores, other engineers' test suites running): every comparison is made inside
one round, rounds are interleaved, and each figure is given as the median and the worst (min) round.
Single-env figures also come from each episode's fastest replay, the one least disturbed by other
processes; ``best/ceiling`` compares the best round of each. ``load`` is the 1-minute load average when
the run starts and ends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np
from mujoco import rollout

from robolearn.policy_factory import make_policy
from robolearn.sim.registry import TASKS, gym_make
from robolearn.sim.vector import make_vec_env

BENCH_TASKS = {"arm": "robolearn/PandaLift-v0", "humanoid": "robolearn/G1BimanualLift-v0",
               "quadrotor": "robolearn/QuadHover-v0"}
STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS
CONTROL = mujoco.mjtState.mjSTATE_CTRL | mujoco.mjtState.mjSTATE_XFRC_APPLIED
BACKENDS = ("sync", "threads", "processes", "threads1")
"""``threads1``: the threaded backend on one thread (its phases inline), to show what its pool adds."""


@dataclass
class Episode:
    """One recorded expert episode.

    ``state``: initial full physics state ``(nstate,)``; ``warmstart``: initial ``qacc_warmstart`` ``(nv,)``;
    ``actions``: ``(T, action_dim)`` env actions; ``controls``: ``(T * n_substeps, nu + 6 nbody)`` ctrl and
    ``xfrc_applied`` of every physics step.
    """

    seed: int
    state: np.ndarray
    warmstart: np.ndarray
    actions: np.ndarray
    controls: np.ndarray


@contextmanager
def recording_mj_step(log: list[np.ndarray]):
    """Replace ``mujoco.mj_step`` with a wrapper that appends the control vector of every physics step to ``log``."""
    real = mujoco.mj_step

    def step(model: mujoco.MjModel, data: mujoco.MjData, nstep: int = 1) -> None:
        control = np.concatenate([data.ctrl, data.xfrc_applied.ravel()])
        log.extend([control] * nstep)
        real(model, data, nstep=nstep)

    mujoco.mj_step = step
    try:
        yield
    finally:
        mujoco.mj_step = real


def record_episodes(env: gym.Env, env_id: str, n: int) -> list[Episode]:
    """Run the clean scripted expert for ``n`` seeded episodes, recording what the replays need."""
    base = env.unwrapped
    expert = make_policy("expert", env_id, env.action_space, noise=0.0, seed=0)
    native = getattr(base, "native_substeps", None)
    if native is not None:
        base.native_substeps = False  # the compiled quadrotor loop calls mj_step from C, out of the recorder's sight
    episodes = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        expert.reset([0])
        state = np.empty(mujoco.mj_stateSize(base.model, STATE))
        mujoco.mj_getState(base.model, base.data, state, STATE)
        warmstart = base.data.qacc_warmstart.copy()
        actions, controls, done = [], [], False
        with recording_mj_step(controls):
            while not done:
                action = expert.act({k: v[None] for k, v in obs.items()})[0, 0]
                obs, _, terminated, truncated, _ = env.step(action)
                actions.append(action)
                done = terminated or truncated
        episodes.append(Episode(seed, state, warmstart, np.array(actions), np.array(controls)))
    if native is not None:
        base.native_substeps = native
    return episodes


def time_env(env: gym.Env, ep: Episode) -> float:
    """Seconds of ``env.step`` over the episode's actions (the reset is not timed)."""
    env.reset(seed=ep.seed)
    start = time.perf_counter()
    for action in ep.actions:
        env.step(action)
    return time.perf_counter() - start


def time_physics(model: mujoco.MjModel, datas: list[mujoco.MjData], episodes: list[Episode]) -> float:
    """Seconds of ``mujoco.rollout`` replaying the episodes (truncated to the shortest) on ``len(datas)`` threads."""
    steps = min(len(ep.controls) for ep in episodes)
    states = np.stack([ep.state for ep in episodes])
    controls = np.stack([ep.controls[:steps] for ep in episodes])
    warm = np.stack([ep.warmstart for ep in episodes])
    data = datas[0] if len(datas) == 1 else datas
    start = time.perf_counter()
    rollout.rollout(model, data, states, controls, control_spec=CONTROL, initial_warmstart=warm, nstep=steps)
    return time.perf_counter() - start


def check_replay(env: gym.Env, episodes: list[Episode]) -> float:
    """Largest ``|qpos|`` difference between the env's last state and the rollout replay's (0: the same physics)."""
    base = env.unwrapped
    ep = episodes[0]
    env.reset(seed=ep.seed)
    for action in ep.actions:
        env.step(action)
    qpos_env = base.data.qpos.copy()
    states, _ = rollout.rollout(base.model, mujoco.MjData(base.model), ep.state[None], ep.controls[None],
                                control_spec=CONTROL, initial_warmstart=ep.warmstart[None])
    qpos = np.empty(base.model.nq)
    scratch = mujoco.MjData(base.model)
    mujoco.mj_setState(base.model, scratch, states[0, -1], STATE)
    qpos[:] = scratch.qpos
    return float(np.max(np.abs(qpos - qpos_env)))


def phase_costs(env: gym.Env, ep: Episode, reps: int, every: int = 5) -> dict[str, float]:
    """Seconds per control step of ``pre_step``, ``physics_step``, ``post_step`` and of ``mj_step(nstep)`` alone.

    At every ``every``-th control step of the episode, the state (with warm-start) is restored ``reps``
    times and each phase timed; the fastest of each is kept, so that other processes' interruptions,
    which only ever add time, drop out. Returns the mean over the sampled steps.
    """
    base = env.unwrapped
    model, data, kind = base.model, base.data, mujoco.mjtState.mjSTATE_INTEGRATION
    env.reset(seed=ep.seed)
    samples = []
    for k, action in enumerate(ep.actions):
        if k % every == 0:
            state = np.empty(mujoco.mj_stateSize(model, kind))
            mujoco.mj_getState(model, data, state, kind)
            samples.append((state, action))
        env.step(action)
    total = dict.fromkeys(("pre", "physics", "post", "raw"), 0.0)
    for state, action in samples:
        best = dict.fromkeys(total, np.inf)
        for _ in range(reps):
            mujoco.mj_setState(model, data, state, kind)
            t0 = time.perf_counter()
            base.pre_step(action)
            t1 = time.perf_counter()
            base.physics_step()
            t2 = time.perf_counter()
            base.post_step()
            t3 = time.perf_counter()
            ctrl = data.ctrl.copy()
            mujoco.mj_setState(model, data, state, kind)
            data.ctrl[:] = ctrl
            t4 = time.perf_counter()
            mujoco.mj_step(model, data, nstep=base.n_substeps)
            t5 = time.perf_counter()
            for key, t in zip(total, (t1 - t0, t2 - t1, t3 - t2, t5 - t4), strict=True):
                best[key] = min(best[key], t)
        for key in total:
            total[key] += best[key] / len(samples)
    return total


def stats(values: list[float], fmt: str) -> str:
    """``median [min]`` of per-round values."""
    return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}]"


def bench_single(env_id: str, n_episodes: int, rounds: int) -> float:
    """Print the single-env figures of ``env_id``; return the 2-thread rollout ceiling in env steps/s (best round)."""
    env = gym_make(env_id)
    base = env.unwrapped
    n_sub = base.n_substeps
    episodes = record_episodes(env, env_id, n_episodes)
    one, two = [mujoco.MjData(base.model)], [mujoco.MjData(base.model) for _ in range(2)]
    batch = episodes * max(1, 16 // len(episodes))
    n_ctrl = sum(len(ep.actions) for ep in episodes)
    t_env = np.zeros((rounds, len(episodes)))
    t_phys = np.zeros((rounds, len(episodes)))
    ceiling = []
    for r in range(rounds):  # each episode: env, then its physics, back to back
        for e, ep in enumerate(episodes):
            t_env[r, e] = time_env(env, ep)
            t_phys[r, e] = time_physics(base.model, one, [ep])
        steps = min(len(ep.controls) for ep in batch)
        ceiling.append(len(batch) * steps / n_sub / time_physics(base.model, two, batch))
    fraction = list(t_phys.sum(1) / t_env.sum(1))  # per round
    overhead = [1 / f - 1 for f in fraction]
    phys_rate = list(n_ctrl * n_sub / t_phys.sum(1))
    best_env, best_phys = t_env.min(0).sum(), t_phys.min(0).sum()  # each episode's fastest replay
    spec = TASKS[env_id]
    print(f"\n{env_id} ({spec.embodiment}): {n_sub} physics steps of {base.model.opt.timestep * 1e3:.1f} ms per "
          f"control step; {n_episodes} expert episodes, {n_ctrl} control steps; {rounds} rounds")
    print(f"  replay check: rollout ends {check_replay(env, episodes):.1e} m/rad from the env (0 = same physics)")
    print(f"  raw physics (rollout, 1 thread)     {n_ctrl * n_sub / best_phys:8.0f} physics steps/s "
          f"(fastest replay of each episode); per round median [min] {stats(phys_rate, '.0f')}")
    print(f"  single env.step                     {n_ctrl / best_env:8.0f} env steps/s = {best_phys / best_env:.2f} of "
          f"raw physics, Python overhead {best_env / best_phys - 1:.1%} of physics time (fastest replays)")
    print(f"    per round, median [min]: {stats(fraction, '.2f')} of raw physics; overhead median "
          f"{statistics.median(overhead):.1%}, best {min(overhead):.1%}, worst {max(overhead):.1%}")
    cost = phase_costs(env, episodes[0], reps=rounds * 3)
    python = cost["pre"] + cost["physics"] - cost["raw"] + cost["post"]
    print(f"  fastest of {rounds * 3} at sampled states: Python {python * 1e6:.1f} us per control step = "
          f"{python / cost['raw']:.1%} of physics ({cost['raw'] * 1e6:.1f} us; pre_step {cost['pre'] * 1e6:.1f}, "
          f"in physics_step {(cost['physics'] - cost['raw']) * 1e6:.1f}, post_step {cost['post'] * 1e6:.1f}); "
          f"env at {cost['raw'] / (cost['pre'] + cost['physics'] + cost['post']):.2f} of raw physics")
    print(f"  mujoco.rollout, 2 threads (ceiling) {max(ceiling):8.0f} env steps/s (best round), median [min] "
          f"{stats(ceiling, '.0f')}; single env at {n_ctrl / best_env / max(ceiling):.2f} of it")
    env.close()
    return max(ceiling)


def benign_actions(env_id: str, space: gym.spaces.Box, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Seeded uniform actions ``shape + (action_dim,)``; for a quadrotor, thrust near hover and small rates."""
    rng = np.random.default_rng(seed)
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if TASKS[env_id].embodiment == "quadrotor":
        mid, half = (low + high) / 2, (high - low) / 2
        low, high = mid - 0.05 * half, mid + 0.05 * half
        low[0], high[0] = 0.24, 0.29  # N, around the 0.265 N hover thrust
    return rng.uniform(low, high, size=(*shape, *space.shape)).astype(np.float32)


def batched_rate(vec: gym.vector.VectorEnv, actions: np.ndarray, seconds: float) -> float:
    """Env steps/s of ``vec`` stepping the ``(K, num_envs, action_dim)`` actions for about ``seconds``."""
    vec.step(actions[0])  # warm-up (thread start, caches)
    steps, start, k = 0, time.perf_counter(), 1
    while True:
        vec.step(actions[k % len(actions)])
        steps, k = steps + 1, k + 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 3:
            return steps * vec.num_envs / elapsed


def bench_batched(env_id: str, sizes: list[int], seconds: float, rounds: int, ceiling: float,
                  backends: tuple[str, ...] = BACKENDS) -> None:
    """Print env steps/s of each of ``backends`` (``sync`` first) per size, ratios to sync, and against the ceiling."""
    print(f"  batched env steps/s, {rounds} interleaved rounds of {seconds:g} s per backend; median [min] over rounds; "
          f"ratios per round; registry default backend: {getattr(TASKS[env_id], 'vec_backend', 'threads')}")
    others = backends[1:]
    print(f"  {'envs':>5} " + " ".join(f"{b:>13}" for b in backends) + " "
          + " ".join(f"{b + '/sync':>15}" for b in others) + f" {'best/ceiling':>13}")
    for n in sizes:
        vecs = {b: make_vec_env(env_id, n, seed=0, backend="threads", num_threads=1) if b == "threads1"
                else make_vec_env(env_id, n, seed=0, backend=b) for b in backends}
        actions = benign_actions(env_id, vecs["sync"].single_action_space, (64, n), seed=0)
        rates: dict[str, list[float]] = {b: [] for b in vecs}
        for vec in vecs.values():
            vec.reset()
        for r in range(rounds):
            for backend in backends if r % 2 == 0 else backends[::-1]:
                rates[backend].append(batched_rate(vecs[backend], actions, seconds))
        ratio = {b: [x / s for s, x in zip(rates["sync"], rates[b], strict=True)] for b in others}
        best = max(others, key=lambda b: statistics.median(ratio[b]))
        print(f"  {n:>5} " + " ".join(f"{stats(rates[b], '.0f'):>13}" for b in backends) + " "
              + " ".join(f"{stats(ratio[b], '.2f'):>15}" for b in others)
              + f" {max(rates[best]) / ceiling:>13.2f}  faster here: {best}")
        for vec in vecs.values():
            vec.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per task, for a smoke test")
    parser.add_argument("--tasks", nargs="*", default=list(BENCH_TASKS), choices=list(BENCH_TASKS),
                        help="embodiments to measure")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS[1:3]), choices=list(BACKENDS[1:]),
                        help="batched backends to compare with sync")
    args = parser.parse_args()
    start = time.perf_counter()
    cpus = len(os.sched_getaffinity(0))
    print(f"{cpus} usable CPUs, load {os.getloadavg()[0]:.1f}; a shared machine: compare figures within this run")
    backends = ("sync", *args.backends)
    run: Callable[[str], None]
    if args.quick:
        def run(env_id: str) -> None:
            bench_batched(env_id, [4], 0.2, 1, bench_single(env_id, n_episodes=1, rounds=1), backends)
    else:
        def run(env_id: str) -> None:
            bench_batched(env_id, [8, 32], 0.3, 7, bench_single(env_id, n_episodes=4, rounds=7), backends)
    for name in args.tasks:
        run(BENCH_TASKS[name])
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
