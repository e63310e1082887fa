"""Camera-observation throughput: frames/s at 84x84 and 128x128, single and batched.

Prints, for one task in one run: state-only env steps/s (the baseline), the same env with one camera
at each size (steps/s, frames/s, slowdown factor vs state-only), and a batched env of ``--num-envs``
envs with pixels (steps/s summed over envs). Rendering is offscreen on the CPU (EGL/Mesa llvmpipe).

    python bench/render_throughput.py [--env robolearn/PandaLift-v0] [--seconds 4] [--num-envs 8]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402

import robolearn.sim.envs  # noqa: E402,F401  (registers the tasks with gymnasium)
from robolearn.sim.vector import make_vec_env  # noqa: E402


def _time_single(env_id: str, seconds: float, **kwargs) -> float:
    """Control steps/s of one env with random actions."""
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def _time_batched(env_id: str, num_envs: int, seconds: float, pixels: dict | None) -> float:
    """Env steps/s (summed over envs) of a batched env."""
    vec = make_vec_env(env_id, num_envs, seed=0, env_kwargs={"pixels": pixels} if pixels else None)
    vec.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, *_ = vec.step(vec.action_space.sample())
        steps += num_envs
    if pixels:
        key = f"pixels/{pixels['cameras'][0]}"
        assert obs[key].shape == (num_envs, pixels["height"], pixels["width"], 3)
    rate = steps / (time.perf_counter() - start)
    vec.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="robolearn/PandaLift-v0")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--camera", default="front")
    args = parser.parse_args()

    base = _time_single(args.env, args.seconds)
    print(f"{args.env}, MUJOCO_GL={os.environ['MUJOCO_GL']}")
    print(f"{'mode':<34s}{'steps/s':>10s}{'frames/s':>10s}{'slowdown':>10s}")
    print(f"{'state only, 1 env':<34s}{base:>10.1f}{'-':>10s}{1.0:>10.2f}")
    for size in (84, 128):
        pixels = {"cameras": [args.camera], "width": size, "height": size}
        rate = _time_single(args.env, args.seconds, pixels=pixels)
        print(f"{f'{size}x{size} {args.camera}, 1 env':<34s}{rate:>10.1f}{rate:>10.1f}{base / rate:>10.2f}")
    batched_state = _time_batched(args.env, args.num_envs, args.seconds, None)
    print(f"{f'state only, {args.num_envs} envs batched':<34s}{batched_state:>10.1f}{'-':>10s}"
          f"{base / batched_state:>10.2f}")
    for size in (84, 128):
        pixels = {"cameras": [args.camera], "width": size, "height": size}
        rate = _time_batched(args.env, args.num_envs, args.seconds, pixels)
        print(f"{f'{size}x{size} {args.camera}, {args.num_envs} envs batched':<34s}{rate:>10.1f}{rate:>10.1f}"
              f"{batched_state / rate:>10.2f}")
    print("slowdown: state-only steps/s of the same mode (single or batched) / this mode's steps/s")


if __name__ == "__main__":
    main()
