"""The ROS 2 environment of robolearn's nodes: importing rclpy, and the variables child processes need.

The PyPI ROS 2 wheels (``pip install robolearn[ros]``) give a working ``rclpy`` from a plain virtualenv:
their ``ros_wheels_bootstrapper`` re-executes the interpreter once at start-up with ``LD_LIBRARY_PATH``
pointing at the wheels' shared libraries, and Fast DDS (``rmw_fastrtps_cpp``) is the default middleware,
so neither ``AMENT_PREFIX_PATH`` nor a sourced ``setup.bash`` is needed. In a colcon workspace the usual
``source install/setup.bash`` does the same job.

:func:`ros_env` gives the variables that keep a node graph to itself: ``ROS_DOMAIN_ID`` (0..101) and
discovery limited to this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, and ``ROS_LOCALHOST_ONLY=1``
for distributions before Jazzy), and Fast DDS on its UDPv4 transport only. Fast DDS's default
shared-memory transport stalled discovery between a long-lived process that opens and closes contexts
(the launcher's monitor, a test client) and the next graph's nodes: the ``episode`` topic of the second
graph in one process never matched. Loopback UDP costs tens of microseconds per small message; set
``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT`` to get shared memory back (camera images at high rate).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

DEFAULT_RMW = "rmw_fastrtps_cpp"
"""The middleware the ``ros`` extra installs."""


def require_rclpy() -> ModuleType:
    """Import rclpy, or raise an ImportError that names the extra to install."""
    try:
        import rclpy
    except ImportError as err:
        raise ImportError(
            "robolearn.ros_nodes needs rclpy and the ROS 2 message packages: pip install 'robolearn[ros]' "
            f"(or source a ROS 2 installation); import failed with: {err}"
        ) from err
    return rclpy


def ros_env(domain_id: int | None = None, localhost_only: bool = True,
            base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child node process.

    Args:
        domain_id: ``ROS_DOMAIN_ID`` (0..101); None keeps the inherited one.
        localhost_only: limit DDS discovery to this machine.
        base: the environment to start from (``os.environ`` when None).
    """
    env = dict(os.environ if base is None else base)
    if domain_id is not None:
        if not 0 <= int(domain_id) <= 101:
            raise ValueError(f"ROS_DOMAIN_ID must be in 0..101, got {domain_id}")
        env["ROS_DOMAIN_ID"] = str(int(domain_id))
    if localhost_only:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated since Jazzy; set together with the range it warns
    env.setdefault("RMW_IMPLEMENTATION", DEFAULT_RMW)
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


MIDDLEWARE_PREFIXES = ("ROS_", "RMW_", "FASTDDS_")
"""Variables :func:`use_ros_env` copies into this process."""


def use_ros_env(domain_id: int | None = None, localhost_only: bool = True) -> dict[str, str]:
    """Apply :func:`ros_env`'s middleware variables to this process (before creating an rclpy context in it);
    returns the full child environment."""
    env = ros_env(domain_id, localhost_only)
    os.environ.update({k: v for k, v in env.items() if k.startswith(MIDDLEWARE_PREFIXES)})
    return env


ParameterSpecs = Mapping[str, tuple[Any, str]]
"""Parameter name -> (default, description): a node's parameters, declared in one place."""


def declare_parameters(node: Any, specs: ParameterSpecs) -> dict[str, Any]:
    """Declare each of ``specs`` on ``node`` (dynamically typed, with its description); returns their values."""
    from rcl_interfaces.msg import ParameterDescriptor

    return {name: node.declare_parameter(name, default, ParameterDescriptor(description=desc,
                                                                            dynamic_typing=True)).value
            for name, (default, desc) in specs.items()}


def run_node(make_node: Any, argv: list[str] | None = None) -> int:
    """The body of a node's ``main``: init rclpy with ``argv`` (``sys.argv`` when None), build the node with
    ``make_node()``, spin it until shutdown, then ``node.close()`` (its own teardown) and
    :func:`shutdown_node`. Returns the exit code 0."""
    import sys

    rclpy = require_rclpy()
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = make_node()
    try:
        spin_until_shutdown(node)
    finally:
        try:
            node.close()
        finally:
            shutdown_node(node)
    return 0


TEARDOWN_BUDGET_S = 3.0
"""Seconds a node may spend in teardown (destroying the node, shutting rclpy down) after its spin ended."""


SHUTDOWN_RACE_S = 1.0
"""Seconds a RuntimeError out of the spin waits for an rclpy shutdown in progress before it counts as an error."""


def spin_until_shutdown(node: object) -> None:
    """Spin ``node`` until Ctrl-C / SIGINT / SIGTERM; a take interrupted by that shutdown is not an error.

    rclpy shuts its context down on SIGINT while the spin may be taking a message; the take can then fail
    (``RuntimeError: Unable to convert call argument '0' to Python object``, which can happen after
    all episodes are done) a moment before :func:`rclpy.ok` turns False. Such an error is re-raised only if
    no shutdown follows within :data:`SHUTDOWN_RACE_S`.
    """
    rclpy = require_rclpy()
    from rclpy.executors import ExternalShutdownException

    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        if not _shutdown_follows(rclpy):
            raise


def _shutdown_follows(rclpy: ModuleType) -> bool:
    """Whether rclpy shuts down (or a Ctrl-C arrives) within :data:`SHUTDOWN_RACE_S` from now."""
    deadline = time.monotonic() + SHUTDOWN_RACE_S
    try:
        while rclpy.ok() and time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        return True
    return not rclpy.ok()


def shutdown_node(node: Any) -> None:
    """Destroy ``node`` and shut rclpy down, call last, after the node saved what it had to.

    A middleware teardown that blocks for more than :data:`TEARDOWN_BUDGET_S` ends the process (exit 0,
    with a line on stderr) instead of hanging until the launcher's SIGKILL: a blocked DDS teardown can
    otherwise outlive SIGINT and SIGTERM (docs/known-problems.md).
    """
    rclpy = require_rclpy()
    _arm_teardown_watchdog(TEARDOWN_BUDGET_S)
    node.destroy_node()
    rclpy.try_shutdown()


def _arm_teardown_watchdog(seconds: float) -> None:
    """Exit the process ``seconds`` from now unless it has exited by itself (a daemon timer thread)."""
    import sys
    import threading

    def expire() -> None:
        print(f"teardown still running after {seconds:g} s; exiting", file=sys.stderr, flush=True)
        os._exit(0)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def set_realtime(priority: int, exclude: set[int] | None = None, reset_on_fork: bool = False) -> int:
    """Run this process's threads (DDS receive threads, the executor) under ``SCHED_FIFO`` at ``priority``.

    Threads whose native ids are in ``exclude`` (an inference worker) keep the normal scheduler, so a
    control step preempts inference the moment its message arrives. With ``reset_on_fork`` the processes
    this one starts get the normal scheduler back (``SCHED_RESET_ON_FORK``) instead of inheriting
    ``SCHED_FIFO``. Linux only; needs root or ``CAP_SYS_NICE`` (``ulimit -r``). Returns the number of threads
    changed; raises PermissionError naming the fix when the system refuses.
    """
    if not 1 <= priority <= 99:
        raise ValueError(f"rt_priority must be in 1..99, got {priority}")
    policy = os.SCHED_FIFO | (os.SCHED_RESET_ON_FORK if reset_on_fork else 0)
    changed = 0
    for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):
        if exclude and tid in exclude:
            continue
        try:
            os.sched_setscheduler(tid, policy, os.sched_param(priority))
        except PermissionError as err:
            raise PermissionError(f"rt_priority {priority}: SCHED_FIFO refused ({err}); run as root, grant "
                                  "CAP_SYS_NICE, or raise 'ulimit -r'") from err
        except ProcessLookupError:  # a thread that just ended
            continue
        changed += 1
    return changed


class GcPauses:
    """Times the interpreter's garbage-collector passes (a control loop's stalls that no profiler of the loop's
    own code shows): count and longest pass (ms) per generation, from ``gc.callbacks``.

    ``freeze=True`` also calls ``gc.freeze()``: every object alive now (the imported modules, the loaded
    policy, the node's setup) moves to a permanent generation that later full collections do not rescan.
    """

    def __init__(self, freeze: bool = False):
        import gc
        import time

        self._clock = time.perf_counter  # bound now: the callback also runs during interpreter shutdown
        self._t0 = 0.0
        self.count = [0, 0, 0]
        self.max_ms = [0.0, 0.0, 0.0]
        if freeze:
            gc.collect()
            gc.freeze()
        self.frozen = gc.get_freeze_count()
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = self._clock()
            return
        gen = int(info["generation"])
        self.count[gen] += 1
        self.max_ms[gen] = max(self.max_ms[gen], 1e3 * (self._clock() - self._t0))

    def summary(self) -> dict[str, Any]:
        """Passes per generation, the longest pass per generation (ms), objects frozen at start."""
        return {"collections": list(self.count), "max_ms": [round(m, 3) for m in self.max_ms], "frozen": self.frozen}

    def close(self) -> None:
        """Stop timing (the frozen objects stay frozen)."""
        import gc

        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
