"""Refinement with Ray actors on clusters of ``ray start`` processes on 127.0.0.1: the actors of a run land on
both nodes of a two-node cluster; a learner process killed mid-run leaves its (detached) actor waiting, and a
learner restarted on the same run directory takes it over and continues from the last checkpoint. Skipped
without ray."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray_helpers
from test_ray_actors import small_cfg

from robolearn.dist.actors import NAMESPACE, actor_name, wait_gone
from robolearn.dist.cluster import connect
from robolearn.refine.loop import train
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
from robolearn.wiring import refine_sources

HERE = Path(__file__).resolve().parent


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
