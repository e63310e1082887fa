"""Camera-observation throughput of batched pixel envs against a bare ``mujoco.Renderer``, and where the time goes.

Run from the repository root: ``PYTHONPATH=. python bench/render_throughput.py`` (about three minutes on 2
cores). Rendering is offscreen on the CPU (``MUJOCO_GL=egl``, Mesa llvmpipe) unless a GPU EGL is present.

For each task (PandaLift-v0 and PandaPegInsert-v0 by default), with the vision preset's cameras
(``--cameras front wrist``) at ``--size`` 84x84, measured in one run:

1. **ceiling**: one ``mujoco.Renderer`` over the task's own model and a reset state, drawing the same cameras
   with the same options as the env's renderer (collision geoms, no MSAA): frames/s with no env, no physics;
   and ``--num-envs`` envs' own renderers used in turn (what GL context reuse could save);
2. **batched**: ``make_vec_env(..., env_kwargs={"pixels": ...})`` with ``--num-envs`` envs on the ``threads``
   backend (pixel envs step inline, one GL context current at a time) and the ``processes`` backend (envs
   rendered in worker processes), random actions: camera frames/s (env steps/s x cameras) and their ratio to
   the ceiling of the same round, and processes over threads (the default for pixel envs before this bench
   showed processes faster) in the same round; ``state`` is the same batched env without cameras, in env
   steps/s;
3. **profile**: one pass of the threads backend with each phase timed: ``render`` (``mjr_render`` and
   reading the pixels back, inside ``Renderer.render``), ``scene`` (``update_scene``), ``physics``
   (``mj_step``), ``copy`` (batching observations: ``_write_obs`` and ``_copy_obs``) and ``python`` (the
   rest of ``step``: controller, rewards, autoreset, action checks), as shares of the step's wall time;
4. **refinement** (``--refine-steps N``, first task only): a residual-RL run of N env steps through
   ``robolearn.refine.loop.train`` over the noisy expert, observing the same cameras (its envs built by
   ``make_vec_env`` with the default backend), and the same run without cameras: env steps/s while only
   collecting (the ``random_steps`` half) and once the learner updates (UTD 0.5, batch 256, the pixel
   encoder on the CPU).

The machine is shared: the modes of one task run interleaved within each of ``--rounds`` rounds, ratios are
taken inside a round, and every figure is the median (worst round).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402

from robolearn.sim.pixels import PixelConfig, PixelRenderer  # noqa: E402
from robolearn.sim.registry import gym_make  # noqa: E402
from robolearn.sim.vector import make_vec_env  # noqa: E402
from robolearn.sim.vector_base import BatchedEnvBase  # noqa: E402

TASK_IDS = ["robolearn/PandaLift-v0", "robolearn/PandaPegInsert-v0"]


def ceiling(env_id: str, pixels: dict, seconds: float, contexts: int = 1) -> float:
    """Frames/s of bare ``mujoco.Renderer`` s (with :class:`PixelRenderer`'s options) on the task's model, no env
    stepping: one renderer, or ``contexts`` envs' own renderers (GL contexts) used in turn, as the threads
    backend uses its envs'."""
    envs = [gym_make(env_id, pixels=pixels).unwrapped for _ in range(contexts)]
    cfg = PixelConfig(**pixels)
    renderers = []
    for env in envs:
        env.reset(seed=0)
        env.model.vis.quality.offsamples = 0
        renderers.append(mujoco.Renderer(env.model, cfg.height, cfg.width))
    option = PixelRenderer(envs[0].model, cfg)._option  # the env renderer's geom groups
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for env, renderer in zip(envs, renderers, strict=True):
            for cam in cfg.cameras:
                renderer.update_scene(env.data, camera=cam, scene_option=option)
                renderer.render()
                frames += 1
    rate = frames / (time.perf_counter() - start)
    for env, renderer in zip(envs, renderers, strict=True):
        renderer.close()
        env.close()
    return rate


def batched(env_id: str, num_envs: int, pixels: dict | None, backend: str, seconds: float) -> float:
    """Env steps/s (summed over envs) of a batched env with random actions."""
    vec = make_vec_env(env_id, num_envs, seed=0, env_kwargs={"pixels": pixels} if pixels else None, backend=backend)
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())  # contexts made, workers warm
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(vec.action_space.sample())
        steps += num_envs
    rate = steps / (time.perf_counter() - start)
    vec.close()
    return rate


@contextmanager
def timed(owner: object, name: str, totals: dict[str, float], phase: str) -> Iterator[None]:
    """Accumulate the wall time of every call of ``owner.name`` into ``totals[phase]``."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def profile(env_id: str, num_envs: int, pixels: dict, seconds: float) -> dict[str, float]:
    """Shares of a threads-backend step's wall time: render, scene, physics, copy, python."""
    totals: dict[str, float] = defaultdict(float)
    vec = make_vec_env(env_id, num_envs, seed=0, env_kwargs={"pixels": pixels}, backend="threads")
    vec.reset(seed=0)
    vec.step(vec.action_space.sample())
    patches: list[tuple[object, str, str]] = [
        (mujoco.Renderer, "render", "render"), (mujoco.Renderer, "update_scene", "scene"),
        (mujoco, "mj_step", "physics"), (BatchedEnvBase, "_write_obs", "copy"), (BatchedEnvBase, "_copy_obs", "copy")]
    wall = 0.0
    with _all(timed(o, n, totals, p) for o, n, p in patches):
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            vec.step(vec.action_space.sample())
            wall += time.perf_counter() - t
    vec.close()
    shares = {k: v / wall for k, v in totals.items()}
    shares["python"] = 1.0 - sum(shares.values())
    return shares


@contextmanager
def _all(managers: Iterator) -> Iterator[None]:
    entered = []
    try:
        for m in managers:
            m.__enter__()
            entered.append(m)
        yield
    finally:
        for m in reversed(entered):
            m.__exit__(None, None, None)


def refine_rates(env_id: str, pixels: dict | None, steps: int, num_envs: int) -> tuple[float, float]:
    """Env steps/s of a short residual refinement: (collecting only, collecting and updating)."""
    import tempfile

    from robolearn.refine.config import RefineConfig
    from robolearn.refine.loop import train
    from robolearn.wiring import refine_sources

    marks: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as out:
        cfg = RefineConfig(method="residual", base="expert:noise=1.5", env_id=env_id, num_envs=num_envs,
                           task={"pixels": pixels} if pixels else {}, total_env_steps=steps,
                           random_steps=steps // 2, critic_warmup_updates=0, eval_every=0, eval_episodes=1,
                           eval_envs=1, eval_budget=0.0, checkpoint_every=0, out_dir=out, device="cpu")
        train(cfg, refine_sources(cfg), progress=False,
              observers=[lambda loop, _: marks.append((time.perf_counter(), loop.env_steps))])
    # The step that crosses random_steps runs the first owed updates: collecting ends before it.
    last_collect = max(i for i, (_, n) in enumerate(marks) if n < steps // 2)

    def rate(a: int, b: int) -> float:
        return (marks[b][1] - marks[a][1]) / (marks[b][0] - marks[a][0])

    return rate(0, last_collect), rate(last_collect + 1, len(marks) - 1)


def _fmt(values: list[float], digits: int = 0) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f})"


def run_task(env_id: str, args: argparse.Namespace) -> None:
    pixels = {"cameras": list(args.cameras), "width": args.size, "height": args.size}
    ncam, n = len(args.cameras), args.num_envs
    modes: dict[str, Callable[[], float]] = {
        "ceiling": lambda: ceiling(env_id, pixels, args.seconds),
        "contexts": lambda: ceiling(env_id, pixels, args.seconds, contexts=n),
        "threads": lambda: ncam * batched(env_id, n, pixels, "threads", args.seconds),
        "processes": lambda: ncam * batched(env_id, n, pixels, "processes", args.seconds),
        "state": lambda: batched(env_id, n, None, "threads", args.seconds),
    }
    rates: dict[str, list[float]] = defaultdict(list)
    for r in range(args.rounds):
        names = list(modes)
        names = names[r % len(names):] + names[:r % len(names)]
        this = {name: modes[name]() for name in names}
        for name, rate in this.items():
            rates[name].append(rate)
            if name in ("threads", "processes"):
                rates[f"{name}/ceiling"].append(rate / this["ceiling"])
        rates["processes/threads"].append(this["processes"] / this["threads"])
        rates["contexts/ceiling"].append(this["contexts"] / this["ceiling"])
    print(f"\n{env_id}: cameras {'+'.join(args.cameras)} at {args.size}x{args.size}, {n} envs, "
          f"{args.rounds} rounds, median (worst)")
    print(f"  ceiling (one mujoco.Renderer, no env)   {_fmt(rates['ceiling']):>14} frames/s")
    print(f"  {n} envs' renderers in turn, no stepping  {_fmt(rates['contexts']):>14} frames/s"
          f"  = {_fmt(rates['contexts/ceiling'], 2)} x ceiling")
    for backend in ("threads", "processes"):
        print(f"  batched pixel env, {backend:<9}            {_fmt(rates[backend]):>14} frames/s"
              f"  = {_fmt(rates[f'{backend}/ceiling'], 2)} x ceiling")
    print(f"  processes / threads (the default before) {_fmt(rates['processes/threads'], 2):>13}")
    print(f"  batched state-only env, threads         {_fmt(rates['state']):>14} env steps/s")
    shares = profile(env_id, n, pixels, args.seconds)
    print("  profile (threads backend, share of step wall time): "
          + ", ".join(f"{k} {v:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=TASK_IDS)
    parser.add_argument("--cameras", nargs="+", default=["front", "wrist"])
    parser.add_argument("--size", type=int, default=84, help="image width and height (pixels)")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--refine-steps", type=int, default=0, help="also time a residual refinement this long")
    args = parser.parse_args()
    print(f"MUJOCO_GL={os.environ['MUJOCO_GL']}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    for env_id in args.envs:
        run_task(env_id, args)
    if args.refine_steps:
        import torch

        torch.set_num_threads(1)
        pixels = {"cameras": list(args.cameras), "width": args.size, "height": args.size}
        print(f"\nresidual refinement on {args.envs[0]}, {args.num_envs} envs, {args.refine_steps} env steps "
              "(half collecting only), env steps/s:")
        for label, px in (("state only", None), (f"{'+'.join(args.cameras)} {args.size}x{args.size}", pixels)):
            collect_rate, update_rate = refine_rates(args.envs[0], px, args.refine_steps, args.num_envs)
            print(f"  {label:<22} collecting {collect_rate:7.1f}   collecting + updating {update_rate:7.1f}")
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
