"""``ros2 launch robolearn_ros g1_push_recovery_sim.launch.py [policy:=<name or dir>]``.

The graph of ``configs/deploy/g1_push_recovery_sim.yaml``: nodes and parameters from the installed
``params/g1_push_recovery_sim.yaml`` (see ``robolearn.ros_nodes.launch_description``).
"""

from robolearn.ros_nodes.launch_description import preset_launch_description


def generate_launch_description():  # noqa: ANN201  (a launch.LaunchDescription)
    return preset_launch_description("g1_push_recovery_sim")
