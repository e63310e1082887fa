"""A real two-node Ray cluster on this machine: a head and a second node started with ``ray start`` on 127.0.0.1
(one CPU each), joined by address; the evaluation's blocks run on both nodes and give the serial outcomes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest
import ray_helpers

from robolearn.dist.cluster import connect
from robolearn.dist.evaluate import merge, run_blocks, split
from robolearn.evaluate import evaluate
from robolearn.policy_factory import load_policy

ENV = "robolearn/PandaLift-v0"


@pytest.fixture
def two_nodes(tmp_path, monkeypatch):
    """The address of a head and a second node (``ray start`` processes, their sessions in a temporary directory
    rather than /tmp/ray), both stopped by their group id."""
    ray = pytest.importorskip("ray")
    for key, value in ray_helpers.SETTINGS.items():
        monkeypatch.setenv(key, value)
    ray_helpers.loopback_driver(monkeypatch)
    port = ray_helpers.free_port()
    address = f"{ray_helpers.LOOPBACK}:{port}"
    temp = tempfile.mkdtemp(prefix="rl-ray-")  # short: Ray's socket paths live under it
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(ray_helpers.start_node(["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                                             f"--temp-dir={temp}"], tmp_path / "head.log"))
        ray_helpers.wait_for_head(tmp_path / "head.log", nodes[0])
        nodes.append(ray_helpers.start_node([f"--address={address}", "--num-cpus=1", f"--temp-dir={temp}"],
                                            tmp_path / "node.log"))
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            ray_helpers.stop_node(node)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_evaluation_blocks_run_on_both_nodes(two_nodes):
    with connect(two_nodes) as ray:
        ray_helpers.wait_for_nodes(ray, 2)
        assert {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} == {"127.0.0.1"}
        parts = run_blocks("expert", ENV, split(4, seed=300, blocks=2), eval_kwargs={"num_envs": 2}, progress=False)
        assert {p.node_id for p in parts} == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len({p.node_id for p in parts}) == 2
    assert not ray.is_initialized()  # the connection made by connect() is closed
    result = merge(ENV, parts)
    reference = evaluate(load_policy("expert", ENV, seed=300), ENV, 4, seed=300, num_envs=2, progress=False)
    assert result.seeds == [300, 301, 302, 303]
    assert sorted(zip(reference.seeds, reference.successes, reference.lengths, strict=True)) == list(
        zip(result.seeds, result.successes, result.lengths, strict=True))
