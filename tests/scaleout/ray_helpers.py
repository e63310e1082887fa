"""Ray on loopback for the tests: an instance in this process, or a head and a second node as ``ray start``
processes (each in its own process group, stopped by that group's id). Imported as ``ray_helpers``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
"""Environment of the test clusters and of the driver that joins them: no usage statistics; no token (Ray's
token mode must be set before ray is imported, and these clusters listen on 127.0.0.1 only), so nothing is
written to ``~/.ray``; a node stops without the 30 s drain."""


def ray_env() -> dict[str, str]:
    """This environment with :data:`SETTINGS` and this checkout first on the workers' path."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | SETTINGS | {"PYTHONPATH": path}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


START = """
import os, sys, types
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
import ray._private.ray_constants as constants
import ray.scripts.scripts as scripts
names = {k: getattr(constants, k) for k in dir(constants) if not k.startswith("__")}
scripts.ray_constants = types.SimpleNamespace(**(names | {"ENABLE_RAY_CLUSTER": True}))
sys.argv = ["ray", "start", *sys.argv[1:]]
scripts.main()
"""
"""``ray start`` on loopback only. Ray swaps 127.0.0.1 for the machine's address and binds all interfaces unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; under that switch every process of the node binds 127.0.0.1, but the CLI
refuses to join a head (multi-node clusters are not supported on macOS and Windows), so only the CLI's own check
is told they are."""


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    """``ray start --block ARGS`` on 127.0.0.1, in a new process group (its raylet and workers stay in it)."""
    out = log.open("w")
    return subprocess.Popen([sys.executable, "-c", START, "--block", f"--node-ip-address={LOOPBACK}",
                             "--disable-usage-stats", *args], stdout=out, stderr=subprocess.STDOUT, env=ray_env(),
                            cwd=REPO, start_new_session=True)


def stop_node(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Stop a node started by :func:`start_node`: SIGTERM to its process group (``ray start --block`` stops its
    processes), then SIGKILL to whatever of the group is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            time.sleep(0.2)
    proc.wait(timeout)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_nodes(ray, count: int, timeout: float = 90.0) -> None:
    """Block until the connected cluster has ``count`` live nodes."""
    deadline = time.monotonic() + timeout
    while sum(n["Alive"] for n in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} Ray nodes not up after {timeout} s: {ray.nodes()}")
        time.sleep(0.5)


def wait_for_head(log: Path, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    """Block until the ``ray start --head`` writing ``log`` says its runtime started."""
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Ray head did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def loopback_driver(monkeypatch) -> None:
    """Let this process join a loopback cluster by address: Ray's one-machine switch (see :data:`START`), and the
    constant that ray read from it at import."""
    from ray._private import ray_constants

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
