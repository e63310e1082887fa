"""The ``robolearn_ros`` colcon package: ``colcon build`` in a fresh workspace, then its installed nodes run.

colcon, colcon-ros and ament_index_python come from PyPI (the dev extra and the ROS 2 wheels); ``launch``
and ``launch_ros`` do not, so the launch files are checked for their parameter files, not executed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import Client, fresh_domain

ROOT = Path(__file__).resolve().parents[2]
NODES = ("sim_robot_node", "policy_node", "safety_node", "teleop_node", "recorder_node")
PRESETS = ("panda_sim", "g1_push_recovery_sim", "quad_hover_sim")


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    colcon = Path(sys.executable).parent / "colcon"
    assert colcon.exists(), "colcon is missing: pip install -e '.[dev]' (colcon-core, colcon-ros)"
    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(ROOT / "ros_nodes", ws / "src" / "robolearn_ros", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([str(colcon), "build", "--event-handlers", "console_direct+"], cwd=ws,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return ws / "install" / "robolearn_ros"


def test_colcon_installs_entry_points_launch_and_params(install, monkeypatch):
    for node in NODES:
        assert os.access(install / "lib" / "robolearn_ros" / node, os.X_OK), node
    share = install / "share" / "robolearn_ros"
    assert (share / "package.xml").exists()
    for preset in PRESETS:
        assert (share / "launch" / f"{preset}.launch.py").exists() and (share / "params" / f"{preset}.yaml").exists()
    from ament_index_python.packages import get_package_share_directory

    monkeypatch.setenv("AMENT_PREFIX_PATH", str(install))
    assert Path(get_package_share_directory("robolearn_ros")) == share


def test_colcon_installed_safety_node_runs_with_its_params_file(install):
    from std_msgs.msg import String

    domain = fresh_domain()
    client = Client(domain)
    from robolearn.ros_nodes.rosenv import ros_env

    params = install / "share" / "robolearn_ros" / "params" / "panda_sim.yaml"
    exe = install / "lib" / "robolearn_ros" / "safety_node"
    # As a user would: source the workspace (its egg-info joins PYTHONPATH), then run the entry point.
    cmd = f". '{install.parent}/setup.sh' && exec '{exe}' --ros-args --params-file '{params}'"
    proc = subprocess.Popen(["bash", "-c", cmd], env=ros_env(domain),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    status: dict = {}
    try:
        client.node.create_subscription(String, "safety/status", lambda m: status.update(json.loads(m.data)), 10)
        ok = client.spin_until(lambda: bool(status), 60.0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            log = proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log = proc.communicate()[0]
        client.close()
    assert ok, f"no safety/status from the colcon-installed safety_node:\n{log[-2000:]}"
    assert status["estopped"] is False
