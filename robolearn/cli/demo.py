"""``robolearn demo``: the main job on its default task (what `make demo` runs)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from robolearn.core.config import describe, load_config, save_config
from robolearn.rollout import EnvConfig, RolloutConfig, run_rollouts
from robolearn.sim.registry import TASKS

HELP = "Scripted-expert rollouts of every task with success rates, and one MP4 per task in runs/."


@dataclass
class DemoConfig:
    """``robolearn demo``."""

    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    """Env ids to show (default: every registered task)."""
    episodes: int = 100
    """Expert episodes per task."""
    seed: int = 0
    out_dir: str = "runs/demo"
    """Where results and videos go."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML preset")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. episodes=20")
    parser.epilog = "config keys:\n" + "\n".join(describe(DemoConfig))


def run_demo(cfg: DemoConfig) -> list:
    """Roll out each task's expert; return the results."""
    save_config(cfg, Path(cfg.out_dir) / "config.yaml")
    results = []
    for env_id in cfg.tasks:
        rollout = RolloutConfig(env=EnvConfig(id=env_id), policy="expert", episodes=cfg.episodes,
                                seed=cfg.seed, video_episodes=1, out_dir=cfg.out_dir,
                                run_name=env_id.split("/")[-1])
        result = run_rollouts(rollout)
        print(result.summary())
        for video in result.videos:
            print(f"  video: {video}")
        results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    run_demo(load_config(DemoConfig, args.config, args.overrides))
    return 0
