"""``ros2 launch robolearn_ros panda_sim.launch.py [policy:=<name or dir>]``: twin + policy + safety.

The same graph as ``robolearn launch configs/deploy/panda_sim.yaml``, for a colcon workspace.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    params = str(Path(get_package_share_directory("robolearn_ros")) / "params" / "panda_sim.yaml")
    policy = LaunchConfiguration("policy")
    return LaunchDescription([
        DeclareLaunchArgument("policy", default_value="expert", description="named policy or policy directory"),
        Node(package="robolearn_ros", executable="sim_robot_node", name="sim_robot", parameters=[params]),
        Node(package="robolearn_ros", executable="policy_node", name="policy",
             parameters=[params, {"policy": policy}]),
        Node(package="robolearn_ros", executable="safety_node", name="safety", parameters=[params]),
    ])
