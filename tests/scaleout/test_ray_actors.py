"""Refinement whose envs are stepped by Ray actors (runner ``ray``, :mod:`robolearn.dist.actors`): the learner
accounts every actor's steps as its own, and a killed actor is restarted while the learner carries on, counting
the lost env steps (a Ray instance in this process; the clusters of ``ray start`` processes are in
``test_ray_actors_cluster.py``). Every Ray test skips without ray; the configuration checks run without it."""

from __future__ import annotations

import json
import os
import signal

import pytest

from robolearn.core.config import ConfigError
from robolearn.dist.actors import actor_name, wait_gone
from robolearn.refine.config import RefineConfig, load_refine_config
from robolearn.refine.loop import train
from robolearn.refine.sources import RefineSources
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
from robolearn.rl.learner import LearnerConfig
from robolearn.wiring import refine_sources


def small_cfg(steps: int, actors: int = 2, **kw) -> RefineConfig:
    learner = LearnerConfig(algo="td3", hidden=[32, 32], batch_size=32, num_critics=2)
    return RefineConfig(**({"method": "residual", "base": "expert:noise=1.5", "num_envs": 4, "total_env_steps": steps,
                            "random_steps": 100, "critic_warmup_updates": 10, "updates_per_env_step": 0.25,
                            "eval_every": 0, "eval_episodes": 4, "eval_envs": 4, "checkpoint_every": 400,
                            "replay_capacity": 10_000, "learner": learner, "runner": "ray", "actors": actors,
                            "weight_sync_every": 20} | kw))


def test_the_runner_and_its_settings_are_checked_by_name(tmp_path):
    with pytest.raises(ConfigError, match="runner must be one of sync, ray"):
        load_refine_config(None, ["runner=threads"])
    with pytest.raises(ConfigError, match="actors and weight_sync_every must be >= 1"):
        load_refine_config(None, ["runner=ray", "actors=0"])
    cfg = small_cfg(40)
    sources = RefineSources(refine_sources(cfg).make_env, refine_sources(cfg).load_policy)  # no actors
    with pytest.raises(ValueError, match="build them with robolearn.wiring.refine_sources"):
        train(cfg, sources, run_dir=tmp_path, progress=False)


@pytest.mark.slow
def test_a_killed_actor_is_restarted_and_the_learner_carries_on(local_ray, tmp_path):
    pids: dict[int, int] = {}
    actors: set[int] = set()

    def kill_actor_0(loop, record) -> None:
        """Past 200 env steps, SIGKILL actor 0's process while it is stepping (a call in flight, unfinished)."""
        actors.add(record.actor)
        calls = [ref for ref, i in loop.collector.inflight.items() if i == 0]
        if not pids and loop.env_steps >= 200 and calls and not local_ray.wait(calls, timeout=0)[0]:
            pids.update({w["index"]: w["pid"] for w in loop.collector.where()})
            os.kill(pids[0], signal.SIGKILL)

    cfg = small_cfg(1600)
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False, observers=[kill_actor_0])
    assert actors == {0, 1}
    assert result.actor_restarts == 1 and result.lost_env_steps > 0
    assert [f.split(" (")[0] for f in result.faults] == ["actor 0 died and was restarted"], result.faults
    assert f"(process {pids[0]} -> " in result.faults[0]
    assert result.env_steps == 1600
    assert abs(result.updates - 0.25 * (result.env_steps - cfg.random_steps)) <= 2  # UTD over both actors' steps
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["faults/lost_env_steps"] for x in lines if "faults/lost_env_steps" in x] == [result.lost_env_steps]
    assert load_checkpoint(latest_checkpoint(tmp_path), {})["counters"]["env_steps"] == 1600
    assert wait_gone(local_ray, actor_name(tmp_path), 2)  # the run's detached actors went with it


def test_hil_runner_ray_is_for_the_simulated_person():
    from robolearn.hil.config import HILConfig

    with pytest.raises(ValueError, match="use device sim-human without realtime"):
        HILConfig(runner="ray", device="keyboard", num_envs=1).validate()


@pytest.mark.slow
def test_hil_with_ray_actors_keeps_each_actors_episodes_apart(local_ray, tmp_path):
    import numpy as np

    from robolearn.datasets.reader import EpisodeDataset
    from robolearn.hil.config import HILConfig
    from robolearn.hil.run import run_hil
    from robolearn.refine.methods import ResidualParams
    from robolearn.wiring import hil_sources

    cfg = HILConfig(mode="hil-serl", num_envs=2, total_env_steps=400, min_buffer=32, critic_warmup_updates=5,
                    publish_every=5, checkpoint_every=20, updates_per_env_step=0.25, residual=ResidualParams(0.25),
                    learner=LearnerConfig(algo="td3", hidden=[32, 32], batch_size=32, drq_pad=0), runner="ray",
                    actors=2, weight_sync_every=10, max_episode_steps=60)
    cfg.sim_human.noise, cfg.sim_human.stall_steps = 0.3, 30
    actors: set[int] = set()
    result = run_hil(cfg, hil_sources(cfg), tmp_path, on_step=lambda loop, step: actors.add(step.actor))
    assert actors == {0, 1} and result.env_steps == 400 and result.updates > 0 and result.takeovers > 0
    reader = EpisodeDataset(tmp_path / "dataset")
    assert len(reader) == result.episodes > 0
    assert all(len(reader.episode(i).intervention) <= 60 for i in range(len(reader)))  # no two envs' steps mixed
    flags = np.concatenate([reader.episode(i).intervention for i in range(len(reader))])
    assert 0 < flags.sum() <= result.intervention_steps
