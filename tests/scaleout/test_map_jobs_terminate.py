"""map_jobs: a SIGTERM to the sweep ends its pool workers too (they used to keep training, orphaned)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SWEEP = """
import sys, time
from robolearn.dist.cluster import map_jobs

def job(path):
    open(path, "w").write("started")
    time.sleep(120)

if __name__ == "__main__":
    map_jobs(job, sys.argv[1:], processes=2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_to_the_sweep_ends_its_workers(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    marks = [tmp_path / f"job{i}" for i in range(2)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, str(script), *map(str, marks)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not all(m.exists() for m in marks):
            assert time.monotonic() < deadline, "the pool workers did not start"
            time.sleep(0.1)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        workers = [int(pid) for pid in children]
        assert workers, "no worker processes found"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) != 0
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "pool workers outlived the killed sweep"
    finally:
        proc.kill()
