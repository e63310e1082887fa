"""A node whose middleware teardown blocks ends its process instead of waiting for the launcher's SIGKILL."""

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
