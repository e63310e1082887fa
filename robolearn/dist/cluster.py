"""Connecting to a Ray cluster and running a function over jobs as Ray tasks.

``--ray auto`` connects to the cluster that ``RAY_ADDRESS`` or a ``ray start`` on this machine names, and
when there is none starts a Ray instance on this machine, bound to loopback, for the duration of the
command; ``--ray ADDRESS`` (``host:port`` of a head, or ``ray://host:10001`` for Ray Client) connects to that
cluster. A Ray already initialized in this process (a notebook, a test) is used as it is and left running.

Workers import robolearn as every node has it installed; when the driver runs from a source checkout, the
checkout is put first on the workers' ``PYTHONPATH`` so that a one-machine cluster runs the same code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

EXTRA = "pip install robolearn[dist]"
LOOPBACK = "127.0.0.1"
"""The address a Ray instance started by ``--ray auto`` binds to: nothing listens on other interfaces."""

LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

J = TypeVar("J")
R = TypeVar("R")


def require_ray() -> ModuleType:
    """The ``ray`` module, or an ImportError of one line naming the extra to install."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"--ray needs the 'ray' package, which is not installed: {EXTRA}") from err
    return ray


def source_checkout() -> Path | None:
    """The source checkout robolearn is imported from (None when it is an installed copy)."""
    root = Path(__file__).resolve().parents[2]  # robolearn/dist/cluster.py
    return root if (root / "pyproject.toml").is_file() and (root / "sim").is_dir() else None


def runtime_env() -> dict[str, Any]:
    """The job's Ray runtime environment: the source checkout first on the workers' ``PYTHONPATH``."""
    root = source_checkout()
    if root is None:
        return {}
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


@contextmanager
def connect(address: str | None = "auto", num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected to ``address`` for the duration of the block (see the module docstring).

    ``num_cpus`` caps the CPUs of an instance started here (default: all of this machine's). On leaving,
    a connection made here is closed and an instance started here is stopped.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address in (None, "", "auto"):
        try:
            ray.init(address="auto", runtime_env=runtime_env())
        except ConnectionError:  # no cluster running: one on this machine, on loopback
            start_local(num_cpus)
    else:
        ray.init(address=address, runtime_env=runtime_env())
    try:
        yield ray
    finally:
        ray.shutdown()


def start_local(num_cpus: int | None = None) -> None:
    """Start a Ray instance in this process, every part of it bound to 127.0.0.1 (no dashboard).

    On Linux Ray swaps a loopback node address for the machine's own and binds all interfaces; its switch for
    one-machine clusters, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (read by each process it starts, and at import
    by this one), keeps every server on loopback. The switch is on while the instance starts.
    """
    import ray
    from ray._private import ray_constants

    saved = os.environ.get(LOOPBACK_SWITCH), getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[LOOPBACK_SWITCH] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, num_cpus=num_cpus,
                 runtime_env=runtime_env())
    finally:
        if saved[0] is None:
            os.environ.pop(LOOPBACK_SWITCH, None)
        else:
            os.environ[LOOPBACK_SWITCH] = saved[0]
        if saved[1] is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved[1]


def node_id() -> str:
    """The id of the Ray node this code runs on (hex)."""
    import ray

    return ray.get_runtime_context().get_node_id()


def run_job(fn: Callable[[J], R], job: J, threads: int, cwd: str | None = None) -> R:
    """Run one job (in a Ray worker) with ``threads`` torch threads (0: torch's default), in the directory
    ``cwd`` when this node has it."""
    from robolearn.rl.threads import set_torch_threads

    set_torch_threads(threads)
    if cwd is not None and Path(cwd).is_dir():
        os.chdir(cwd)
    return fn(job)


def ray_map(fn: Callable[[J], R], jobs: Sequence[J], address: str | None = "auto", num_cpus: float = 1,
            torch_threads: int = 1) -> list[R]:
    """``[fn(job) for job in jobs]``, each call a Ray task with ``num_cpus`` CPUs and ``torch_threads`` torch
    threads, as many at a time as the cluster has CPUs for; results in the order of ``jobs``. Each job runs in
    this process's working directory where its node has that directory (relative paths in a job mean what they
    mean here). ``fn`` and the jobs are pickled (cloudpickle: a function of a script's ``__main__`` travels by
    value, the modules it imports by name)."""
    with connect(address) as ray:
        task = ray.remote(num_cpus=num_cpus)(run_job)
        return ray.get([task.remote(fn, job, torch_threads, os.getcwd()) for job in jobs])


def map_jobs(fn: Callable[[J], R], jobs: Sequence[J], processes: int, ray: str | None = None) -> list[R]:
    """``[fn(job) for job in jobs]`` for the benches' sweeps: in a pool of ``processes`` spawned processes, or,
    with ``ray`` (``auto`` or a cluster address), as Ray tasks (:func:`ray_map`: one CPU and one torch thread
    each); results in the order of ``jobs``. Without ``ray`` nothing imports Ray."""
    if ray:
        return ray_map(fn, jobs, address=ray)
    import multiprocessing as mp

    with _terminate_as_exit(), mp.get_context("spawn").Pool(processes) as pool:
        return pool.map(fn, jobs, chunksize=1)


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit in the main thread: a pool's ``with`` block then terminates its
    workers. Without this a killed sweep left its workers running, each an hour-long training run."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
