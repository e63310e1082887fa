"""colcon / ament_python build of the ``robolearn_ros`` ROS 2 package (entry points, launch and params).

The node code itself is ``robolearn.ros_nodes``, installed with robolearn (``pip install 'robolearn[ros]'``
into the Python that the ROS 2 installation uses). Guarded so that importing this file does nothing:
the repository's own setup.py treats this folder as the ``robolearn.ros_nodes`` package.
"""

from glob import glob

PACKAGE = "robolearn_ros"
NODES = ("sim_robot_node", "policy_node", "safety_node", "teleop_node", "recorder_node")

if __name__ == "__main__":
    from setuptools import setup

    setup(
        name=PACKAGE,
        version="0.1.0",
        packages=[],
        data_files=[
            ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
            (f"share/{PACKAGE}", ["package.xml"]),
            (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
            (f"share/{PACKAGE}/params", glob("params/*.yaml")),
        ],
        install_requires=["setuptools", "robolearn"],
        zip_safe=True,
        entry_points={"console_scripts": [f"{n} = robolearn.ros_nodes.{n}:main" for n in NODES]},
    )
