"""Process helpers of rosenv: a blocked middleware teardown ends its process; collector passes are timed."""

from __future__ import annotations

import subprocess
import sys
import time


def test_a_blocked_teardown_exits_cleanly_after_the_budget() -> None:
    code = ("import time; from robolearn.ros_nodes.rosenv import _arm_teardown_watchdog; "
            "_arm_teardown_watchdog(0.3); time.sleep(60)")  # stands in for a DDS teardown that never returns
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "teardown still running after 0.3 s" in out.stderr
    assert time.monotonic() - t0 < 20


def test_collector_passes_are_timed_and_frozen_objects_are_not_rescanned() -> None:
    """GcPauses (policy_node's ``gc`` report): passes counted per generation; after ``freeze`` a full pass only
    scans what was allocated since (run in a child: freezing is process-wide)."""
    code = """
import gc, json
from robolearn.ros_nodes.rosenv import GcPauses
keep = [[i] for i in range(300_000)]      # start-up state: many long-lived objects
gc.collect()
before = GcPauses(freeze=False)
gc.collect()                              # a full pass over everything
slow = before.summary()["max_ms"][2]
before.close()
after = GcPauses(freeze=True)
cycle = []; cycle.append(cycle)           # a little garbage made after start-up
gc.collect()
print(json.dumps({"slow": slow, "fast": after.summary()["max_ms"][2], "summary": after.summary()}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json

    r = json.loads(out.stdout)
    assert r["summary"]["collections"][2] == 1 and r["summary"]["frozen"] > 300_000, r
    assert r["fast"] < r["slow"] / 3, r  # the frozen start-up objects are not traversed again
