"""The main job as resumable stages: collect -> train -> evaluate -> refine -> ROS 2 -> report."""
