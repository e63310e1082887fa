"""Refinement whose envs are stepped by Ray actors (runner ``ray``, :mod:`robolearn.dist.actors`): the learner
accounts every actor's steps as its own; a killed actor is restarted and the learner carries on, counting the
lost env steps; a killed learner leaves its actors waiting and a learner restarted on the run directory takes
them over from its checkpoint; on a two-node cluster the actors run on both nodes.

Every Ray test skips without ray; the configuration checks run without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray_helpers

from robolearn.core.config import ConfigError
from robolearn.dist.actors import NAMESPACE, actor_name, wait_gone
from robolearn.dist.cluster import connect
from robolearn.refine.config import RefineConfig, load_refine_config
from robolearn.refine.loop import train
from robolearn.refine.sources import RefineSources
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
from robolearn.rl.learner import LearnerConfig
from robolearn.wiring import refine_sources

HERE = Path(__file__).resolve().parent


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


@pytest.mark.slow
def test_actors_run_on_both_nodes_of_a_cluster(two_nodes, tmp_path):
    nodes: dict[int, str] = {}

    def note_nodes(loop, record) -> None:
        if not nodes:
            nodes.update({w["index"]: w["node"] for w in loop.collector.where()})

    cfg = small_cfg(400, ray_address=two_nodes)
    with connect(two_nodes) as ray:
        ray_helpers.wait_for_nodes(ray, 2)
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False, observers=[note_nodes])
    assert len(alive) == 2 and set(nodes.values()) == alive
    assert result.env_steps == 400 and result.updates > 0


def _learner(address: str, run_dir: Path, steps: int, log: Path, *extra: str) -> subprocess.Popen:
    env = ray_helpers.ray_env() | {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.Popen([sys.executable, str(HERE / "actor_learner.py"), address, str(run_dir), str(steps),
                             *extra], env=env, cwd=ray_helpers.REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout
    while (path := latest_checkpoint(run_dir)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the learner wrote no checkpoint:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return path


@pytest.mark.slow
def test_a_killed_learner_resumes_from_its_checkpoint_while_its_actor_waits(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    for key, value in ray_helpers.SETTINGS.items():
        monkeypatch.setenv(key, value)
    ray_helpers.loopback_driver(monkeypatch)
    port, temp = ray_helpers.free_port(), tempfile.mkdtemp(prefix="rl-ray-")
    address, run_dir, steps = f"{ray_helpers.LOOPBACK}:{port}", tmp_path / "run", 3000
    run_dir.mkdir()
    head = ray_helpers.start_node(["--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                                   f"--temp-dir={temp}"], tmp_path / "head.log")
    try:
        ray_helpers.wait_for_head(tmp_path / "head.log", head)
        first = _learner(address, run_dir, steps, tmp_path / "first.log")
        _wait_for_checkpoint(run_dir, first, tmp_path / "first.log")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        killed = load_checkpoint(latest_checkpoint(run_dir), {})
        assert killed["counters"]["env_steps"] < steps
        with connect(address) as ray:  # the learner is gone; its actor waits
            waiting = ray.get(ray.get_actor(f"{actor_name(run_dir)}-0", namespace=NAMESPACE).where.remote())
        second = _learner(address, run_dir, steps, tmp_path / "second.log", "--resume")
        assert second.wait(180) == 0, (tmp_path / "second.log").read_text()[-3000:]
        final = load_checkpoint(latest_checkpoint(run_dir), {})
        notes = [json.loads(x) for x in (run_dir / "actor_pids.jsonl").read_text().splitlines()]
        with connect(address) as ray:
            gone = wait_gone(ray, actor_name(run_dir), 1)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        ray_helpers.stop_node(head)
    assert [n["resume"] for n in notes] == [False, True]
    assert notes[1]["pids"] == {"0": waiting["pid"]} == notes[0]["pids"]  # the same actor served both learners
    assert notes[1]["env_steps"] > killed["counters"]["env_steps"] >= 200  # resumed from the checkpoint
    assert final["counters"]["env_steps"] == steps and final["evals"][0] == killed["evals"][0]
    assert gone
