"""A refinement learner with Ray actors, as its own process (the learner-fault test kills it):
``python actor_learner.py ADDRESS RUN_DIR STEPS [--resume]``.

Joins the cluster at ADDRESS, refines the residual on PandaLift with one actor, and appends the actor's process
id and the env-step count to ``RUN_DIR/actor_pids.jsonl`` once at its first collected step."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # join a loopback cluster (see ray_helpers.START)

from robolearn.refine.config import RefineConfig  # noqa: E402
from robolearn.refine.loop import train  # noqa: E402
from robolearn.rl.learner import LearnerConfig  # noqa: E402
from robolearn.rl.threads import set_torch_threads  # noqa: E402
from robolearn.wiring import refine_sources  # noqa: E402


def config(address: str, steps: int) -> RefineConfig:
    """A tiny residual run on PandaLift, its envs stepped by one Ray actor, a checkpoint every 200 env steps."""
    learner = LearnerConfig(algo="td3", hidden=[32, 32], batch_size=32, num_critics=2)
    return RefineConfig(method="residual", base="expert:noise=1.5", num_envs=4, total_env_steps=steps,
                        random_steps=100, critic_warmup_updates=10, updates_per_env_step=0.25, eval_every=0,
                        eval_episodes=4, eval_envs=4, checkpoint_every=200, replay_capacity=10_000,
                        learner=learner, runner="ray", actors=1, weight_sync_every=20, ray_address=address)


def main(argv: list[str]) -> int:
    address, run_dir, steps = argv[0], Path(argv[1]), int(argv[2])
    resume = "--resume" in argv
    set_torch_threads(1)
    seen: list[int] = []

    def note_actor(loop, record) -> None:
        if not seen:
            seen.append(loop.env_steps)
            pids = {w["index"]: w["pid"] for w in loop.collector.where()}
            with (run_dir / "actor_pids.jsonl").open("a") as f:
                f.write(json.dumps({"resume": resume, "env_steps": loop.env_steps, "pids": pids}) + "\n")

    cfg = config(address, steps)
    result = train(cfg, refine_sources(cfg), run_dir=run_dir, resume=resume, progress=False, observers=[note_actor])
    print(json.dumps({"env_steps": result.env_steps, "updates": result.updates}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
