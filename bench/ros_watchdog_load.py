"""Does the watchdog hold under load? The largest gap between commands reaching the robot, with cores kept busy.

The deployment graph of ``bench/ros_latency.py`` (``policy_node`` + ``safety_node`` gate, separate processes, a
private domain on loopback) drives a robot stand-in in this process at ``--rate`` (100 Hz) while ``--load``
processes spin on the CPU besides it (one busy core). The stand-in records when each command (the policy's,
forwarded, or the safety node's fallback) arrives on ``joint_trajectory``. The watchdog's promise is that the
robot never waits longer than ``watchdog_timeout`` plus one control period for a command, whatever the
policy does; the bench reports, per configuration:

* ``max_gap_ms``: the largest interval between two arrivals; ``over_bound``: intervals above
  ``watchdog_timeout + period`` (the promise broken);
* ``missed``: intervals above 1.5 periods (a period without a command, mostly the policy's own stalls);
* ``late_ms``: for intervals longer than the timeout (the fallback's turn), the largest excess over it;
* the safety node's fallback count, and the CPU steal (a VM's noise) over the measured time.

``--stall-ms S --stall-every T`` freezes the policy process (SIGSTOP, then SIGCONT) for S ms every T s, a policy
that stops answering, so that the watchdog's fallback is what the robot gets after each stall, on time or not.

Configurations: ``before``, the safety node as it was (its watchdog an executor timer, normal scheduling:
``watchdog_thread: false, rt_priority: 0``); ``after``, its defaults (a watchdog thread of its own that wakes
at the deadline, ``SCHED_FIFO`` when permitted). With ``--blocks N`` each configuration's ``--duration`` is split
into N blocks run alternately, so both sample the same minutes of a shared machine. The stand-in runs under
``SCHED_FIFO`` (``--stand-in-rt``) when permitted, so its own scheduling does not count as a gap; the processes
it starts (the load, the graph) do not inherit it.

    python bench/ros_watchdog_load.py [--duration 60] [--rate 100] [--load 1] [--blocks 2] [--json out.json]

(needs the ros extra: ``pip install -e '.[ros]'``)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_latency import Robot, deployment_cmds, spawn, stop  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "before": {"watchdog_thread": False, "rt_priority": 0},
    "after": {},
}
"""Configuration name -> the safety node's parameters (``after``: its defaults)."""


def busy_load(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy (a pure-Python spin loop)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


class Staller(threading.Thread):
    """Freezes a process group for ``stall`` s every ``every`` s (SIGSTOP / SIGCONT) until :meth:`stop`."""

    def __init__(self, pgid: int, stall: float, every: float):
        super().__init__(daemon=True)
        self.pgid, self.stall, self.every = pgid, stall, every
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every):
            try:
                os.killpg(self.pgid, signal.SIGSTOP)
                self._halt.wait(self.stall)
                os.killpg(self.pgid, signal.SIGCONT)
            except ProcessLookupError:
                return

    def halt(self) -> None:
        """Stop freezing; the process runs on."""
        self._halt.set()
        self.join()
        try:
            os.killpg(self.pgid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def gaps(blocks: list[dict[str, Any]], period: float, timeout: float, duration: float) -> dict[str, Any]:
    """Interval figures over the blocks (intervals within a block, never across two): the largest (ms), those
    above ``timeout + period``, those above 1.5 periods, and the commands expected in ``duration`` s."""
    iv = [np.diff(b["arrivals"]) for b in blocks if len(b["arrivals"]) > 1]
    iv_all = np.concatenate(iv) if iv else np.zeros(0)
    steal = [sum(b["steal"][i] for b in blocks) for i in (0, 1)]
    return {"commands": int(sum(len(b["arrivals"]) for b in blocks)), "expected": int(round(duration / period)),
            "max_gap_ms": float(iv_all.max() * 1e3) if iv_all.size else float("nan"),
            "p99_gap_ms": float(np.percentile(iv_all, 99) * 1e3) if iv_all.size else float("nan"),
            "over_bound": int(np.sum(iv_all > timeout + period)), "missed": int(np.sum(iv_all > 1.5 * period)),
            "late_ms": float((iv_all[iv_all > timeout] - timeout).max() * 1e3) if (iv_all > timeout).any() else 0.0,
            "timeouts": int(np.sum(iv_all > timeout)),
            "fallbacks": int(sum(b["safety"].get("counts", {}).get("fallback", 0) for b in blocks)),
            "cpu_steal_pct": 100.0 * steal[0] / steal[1] if steal[1] else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="control rate, Hz")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (node start-up)")
    parser.add_argument("--blocks", type=int, default=2, help="blocks per configuration, run alternately")
    parser.add_argument("--load", type=int, default=1, help="busy processes besides the graph")
    parser.add_argument("--watchdog", type=float, default=0.1, help="the safety node's watchdog timeout, s")
    parser.add_argument("--policy", default="expert", help="policy_node's policy")
    parser.add_argument("--stall-ms", type=float, default=0.0, help="freeze the policy process this long (ms)")
    parser.add_argument("--stall-every", type=float, default=2.0, help="... every this many seconds")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--stand-in-rt", type=int, default=60, help="SCHED_FIFO priority of the stand-in (0: off)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: a free one)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from robolearn.ros_nodes.domain import claim_domain
    from robolearn.ros_nodes.rosenv import set_realtime, use_ros_env

    domain = claim_domain(args.domain_id)
    env = use_ros_env(domain)
    robot = Robot(domain)
    if args.stand_in_rt:
        try:
            set_realtime(args.stand_in_rt, reset_on_fork=True)  # the load and the graph: normal scheduling
        except PermissionError as err:
            print(f"warning: the stand-in runs without SCHED_FIFO: {err}", flush=True)
    period = 1.0 / args.rate
    blocks: dict[str, list[dict[str, Any]]] = {name: [] for name in args.configs}
    load = busy_load(args.load)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.blocks):
                for name in args.configs:
                    extra = {"limits.watchdog_timeout": args.watchdog, **CONFIGS[name]}
                    procs = [spawn(c, env) for c in deployment_cmds(args.rate, Path(tmp), args.policy,
                                                                    safety_extra=extra)]
                    staller = Staller(procs[0].pid, args.stall_ms / 1e3, args.stall_every) if args.stall_ms else None
                    if staller is not None:
                        staller.start()
                    try:
                        blocks[name].append(robot.run(args.rate, args.warmup, args.duration / args.blocks,
                                                      deploy=True, safety=True))
                    finally:
                        try:
                            if staller is not None:
                                staller.halt()
                        finally:
                            stop(procs)
                    time.sleep(0.5)
    finally:
        stop(load)
        robot.close()
    results = {"cpus": os.cpu_count(), "rate_hz": args.rate, "duration_s": args.duration, "load": args.load,
               "watchdog_s": args.watchdog, "stall_ms": args.stall_ms, "stall_every_s": args.stall_every,
               "bound_ms": 1e3 * (args.watchdog + period), "domain": domain,
               "configs": {name: gaps(b, period, args.watchdog, args.duration) for name, b in blocks.items()}}
    print_results(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def print_results(results: dict[str, Any]) -> None:
    """One line per configuration."""
    for name, r in results["configs"].items():
        print(f"{name:6s} max gap {r['max_gap_ms']:.1f} ms (bound {results['bound_ms']:.0f}), p99 "
              f"{r['p99_gap_ms']:.1f} ms, over the bound {r['over_bound']}, timeouts {r['timeouts']} with the "
              f"fallback at most {r['late_ms']:.1f} ms past the timeout, missed periods {r['missed']} of "
              f"{r['expected']}, commands {r['commands']}, fallbacks {r['fallbacks']}, CPU steal "
              f"{r['cpu_steal_pct']:.1f}%", flush=True)


if __name__ == "__main__":
    main()
