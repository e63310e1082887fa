"""``robolearn envs``: list registered environments with their spaces and control rate."""

from __future__ import annotations

import argparse

from robolearn.sim.registry import TASKS, gym_make

HELP = "List registered environments: observation/action spaces and control rate."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--brief", action="store_true", help="one line per env")


def describe_env(env_id: str) -> list[str]:
    """Human-readable lines describing one registered env (builds it once)."""
    spec = TASKS[env_id]
    env = gym_make(env_id)
    base = env.unwrapped
    lines = [f"{env_id}  ({spec.embodiment}) {spec.description}",
             f"  control {base.control_hz:g} Hz over physics {base.physics_hz:g} Hz, "
             f"max {spec.max_episode_steps} steps, expert {spec.expert.split(':')[-1]}"]
    act = env.action_space
    lines.append(f"  action   {act.shape} {act.dtype} low={act.low.tolist()} high={act.high.tolist()}")
    for key, space in env.observation_space.spaces.items():
        lines.append(f"  obs {key:<15s}{space.shape} {space.dtype}")
    env.close()
    return lines


def run(args: argparse.Namespace) -> int:
    for env_id, spec in TASKS.items():
        if args.brief:
            print(f"{env_id:<32s} {spec.embodiment:<10s} {spec.description}")
        else:
            print("\n".join(describe_env(env_id)))
    return 0
