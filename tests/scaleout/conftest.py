"""The Ray clusters of the scale-out tests (each skipped without ray): an instance in this process on
127.0.0.1, and a head plus a second node started with ``ray start`` on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest
import ray_helpers

from robolearn.dist.cluster import start_local


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance in this process on 127.0.0.1 with 2 CPUs (:data:`ray_helpers.SETTINGS`), shut down after."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in ray_helpers.ray_env().items():
            mp.setenv(key, value)
        start_local(num_cpus=2)
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture
def two_nodes(tmp_path, monkeypatch):
    """The address of a head and a second node (``ray start`` processes with one CPU each, their sessions in a
    temporary directory rather than /tmp/ray), both stopped by their group id."""
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
