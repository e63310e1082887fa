"""Embodiments: one module per kind of robot, listed in :data:`EMBODIMENTS`.

Each module holds an :class:`~robolearn.ros_nodes.embodiments.base.Embodiment`: the adapter between env
actions (physical units, the policy's output) and the robot's command message, the command topic, the
safety filter's defaults, checks and fallback, where the filter reads the measured state, and how the MuJoCo
twin applies a command. The nodes look the embodiment up by the task's ``TaskSpec.embodiment`` and hold no
per-embodiment branch. Topic names are relative, so a namespace or remapping places them.

=========  =====================  ================================  ============================================
embodiment command topic          message                           fields
=========  =====================  ================================  ============================================
arm        ``joint_trajectory``   ``trajectory_msgs/JointTrajectory`` 7 arm joints + ``gripper``; one point:
                                                                    positions (rad; closure 0..1),
                                                                    ``time_from_start`` = period
           (twin also:            ``std_msgs/Float64MultiArray``    the same 8 positions (forward controller)
           ``forward_position``)
humanoid   ``joint_command``      ``sensor_msgs/JointState``        ``position`` = targets (rad), ``velocity`` =
                                                                    kp (N m/rad), ``effort`` = kd (N m s/rad)
quadrotor  ``rates_setpoint``     ``geometry_msgs/TwistStamped``    ``angular`` = body rates (rad/s, FLU),
                                                                    ``linear.z`` = collective thrust 0..1
=========  =====================  ================================  ============================================

A new embodiment is one module here (its adapter, a subclass of
:class:`~robolearn.ros_nodes.embodiments.base.JointEmbodiment` or another implementation of the protocol)
plus one line in :data:`EMBODIMENTS`; a deploy preset (``configs/deploy/<name>.yaml`` and its
``params/``, ``launch/`` files) if it wants one.
"""

from __future__ import annotations

from collections.abc import Mapping

from robolearn.ros_nodes.embodiments.arm import Arm
from robolearn.ros_nodes.embodiments.base import Adapter, Embodiment
from robolearn.ros_nodes.embodiments.humanoid import Humanoid
from robolearn.ros_nodes.embodiments.quadrotor import Quadrotor

EMBODIMENTS: dict[str, Embodiment] = {
    "arm": Arm(),
    "humanoid": Humanoid(),
    "quadrotor": Quadrotor(),
}
"""Embodiment name (a task's ``TaskSpec.embodiment``) -> its embodiment."""


def embodiment_for(env_id: str, embodiments: Mapping[str, Embodiment] | None = None) -> Embodiment:
    """The embodiment of a registered task (from ``embodiments``, :data:`EMBODIMENTS` by default)."""
    from robolearn.sim.registry import task

    table = EMBODIMENTS if embodiments is None else embodiments
    name = task(env_id).embodiment
    if name not in table:
        raise ValueError(f"{env_id}: no embodiment '{name}' (known: {sorted(table)})")
    return table[name]


__all__ = ["EMBODIMENTS", "Adapter", "Embodiment", "embodiment_for"]
