"""Measure the quadrotor experts and envs: hover success, gate lap time, control steps per second.

    python -m robolearn.sim.quadrotor.benchmark --episodes 100

Episode ``i`` resets with seed ``seed + i`` (as ``robolearn rollout`` does). Steps per second are
single-env control steps (each 10 physics steps with the inner rate loop) with a constant action, so
they measure the env alone, not the expert.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from robolearn.core.stats import format_rate
from robolearn.sim.quadrotor.expert import GatesExpert, HoverExpert
from robolearn.sim.quadrotor.model import CRAZYFLIE
from robolearn.sim.registry import gym_make

HOVER, GATES = "robolearn/QuadHover-v0", "robolearn/QuadGates-v0"


def run_expert(env_id: str, episodes: int, seed: int = 0, **task: Any) -> list[dict[str, Any]]:
    """Run the clean expert for ``episodes`` episodes; one result dict per episode."""
    env = gym_make(env_id, **task)
    expert = (HoverExpert if env_id == HOVER else GatesExpert)(noise=0.0, seed=seed)
    results = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        expert.reset([0])
        done, steps = False, 0
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act({k: v[None] for k, v in obs.items()})[0, 0])
            done, steps = terminated or truncated, steps + 1
        results.append({"success": bool(info["is_success"]), "steps": steps, "lap_time": info.get("lap_time")})
    env.close()
    return results


def steps_per_second(env_id: str, action_mode: str, steps: int = 2000) -> float:
    """Control steps/s of one env under a hover action (resets on episode end are included)."""
    env = gym_make(env_id, action_mode=action_mode)
    hover = CRAZYFLIE.hover_thrust
    action = np.array([hover, 0, 0, 0] if action_mode == "rates" else [hover / 4] * 4, np.float32)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hover = run_expert(HOVER, args.episodes, args.seed)
    wins = sum(r["success"] for r in hover)
    print(f"{HOVER} expert: success {format_rate(wins, len(hover))}")
    gates = run_expert(GATES, args.episodes, args.seed)
    laps = np.array([r["lap_time"] for r in gates if r["success"]], dtype=float)
    print(f"{GATES} expert: laps completed {format_rate(len(laps), len(gates))}")
    if len(laps):
        print(f"  lap time (s): mean {laps.mean():.3f}, median {np.median(laps):.3f}, "
              f"min {laps.min():.3f}, max {laps.max():.3f}")
    for env_id in (HOVER, GATES):
        for mode in ("rates", "motors"):
            print(f"{env_id} [{mode}]: {steps_per_second(env_id, mode):.0f} control steps/s")


if __name__ == "__main__":
    main()
