"""``ros2 launch robolearn_ros panda_sim_inline.launch.py [policy:=<name or dir>]``.

The graph of ``configs/deploy/panda_sim_inline.yaml``: nodes and parameters from the installed
``params/panda_sim_inline.yaml`` (see ``robolearn.ros_nodes.launch_description``).
"""

from robolearn.ros_nodes.launch_description import preset_launch_description


def generate_launch_description():  # noqa: ANN201  (a launch.LaunchDescription)
    return preset_launch_description("panda_sim_inline")
