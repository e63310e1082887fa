"""``ros2 launch`` descriptions of the robolearn node graphs, for a colcon workspace.

The colcon package ``robolearn_ros`` (this folder) installs one parameter file per deploy preset,
``share/robolearn_ros/params/<preset>.yaml`` (the ``/node: ros__parameters`` form of
``configs/deploy/<preset>.yaml``, see :func:`robolearn.ros_nodes.launcher.ros_params`), and one launch
file per preset that calls :func:`preset_launch_description`. The graph is the same as
``robolearn launch configs/deploy/<preset>.yaml``: the nodes named in the parameter file, in its order,
each from its installed entry point ``<node>_node``. ``policy:=<name or directory>`` overrides the
policy node's policy.

``launch`` and ``launch_ros`` come with a ROS 2 installation (not from PyPI), so they are imported here
only when a launch file asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PACKAGE = "robolearn_ros"


def load_preset(params_file: str | Path) -> dict[str, dict[str, Any]]:
    """``{node: parameters}`` of a ``/node: ros__parameters`` file, in file order."""
    data = yaml.safe_load(Path(params_file).read_text()) or {}
    if not data:
        raise ValueError(f"{params_file}: no '/<node>: ros__parameters' entries")
    return {str(k).lstrip("/"): dict((v or {}).get("ros__parameters", {})) for k, v in data.items()}


def preset_nodes(params_file: str | Path) -> list[str]:
    """Node names of a ``/node: ros__parameters`` file, in file order (``["sim_robot", "policy", ...]``)."""
    return list(load_preset(params_file))


def preset_launch_description(preset: str) -> Any:
    """A ``LaunchDescription`` starting the nodes of ``params/<preset>.yaml`` with those parameters."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    params = Path(get_package_share_directory(PACKAGE)) / "params" / f"{preset}.yaml"
    nodes = load_preset(params)
    actions: list[Any] = [DeclareLaunchArgument(
        "policy", default_value=str(nodes.get("policy", {}).get("policy", "expert")),
        description="named policy (expert, random, zero) or a policy directory")]
    for name in nodes:
        overrides = [{"policy": LaunchConfiguration("policy")}] if name == "policy" else []
        actions.append(Node(package=PACKAGE, executable=f"{name}_node", name=name, output="screen",
                            parameters=[str(params), *overrides]))
    return LaunchDescription(actions)
