"""The safety filter's ROS-side settings, shared by ``safety_node`` and the policy node's inline filter.

:func:`default_safety_config` gives a task's limits (its model's joint ranges, datasheet rates, control
period); :func:`declare_limits` exposes every :class:`~robolearn.ros_nodes.safety.SafetyConfig` field as a
``limits.<field>`` node parameter over those defaults; :func:`state_qos` is the QoS of ``safety/state``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from robolearn.ros_nodes.adapters import ArmAdapter
from robolearn.ros_nodes.safety import SafetyConfig

PANDA_MAX_VELOCITY = [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]
"""Franka Panda joint velocity limits (rad/s), from Franka's datasheet."""
PANDA_MAX_ACCELERATION = [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]
"""Franka Panda joint acceleration limits (rad/s^2), from Franka's datasheet."""
ARM_WORKSPACE = ([0.15, -0.6, -0.005], [0.95, 0.6, 0.9])
"""Default TCP box (m, world frame): in front of the base, above the table top (z = 0)."""
QUAD_TUMBLE_TILT = 1.2
"""Quadrotor tilt (rad, 69 deg) that trips the fallback: control is lost, not an envelope limit. Above the
scripted experts' tilt commands (40 deg hover, 60 deg gates) and the 0.97 rad a refined hover policy flew in
sim; a 0.8 rad trip stopped that policy in its first second over ROS 2."""


def default_safety_config(env_id: str, adapter: Any) -> SafetyConfig:
    """Limits from the task: its model's joint ranges, the datasheet rates, its control period."""
    from robolearn.sim.registry import task

    emb = task(env_id).embodiment
    if emb == "quadrotor":
        return SafetyConfig(embodiment="quadrotor", size=4, period=adapter.period, hover_thrust=adapter.hover_thrust,
                            max_rate=adapter.max_rate, max_tilt=QUAD_TUMBLE_TILT)
    model = adapter.model if isinstance(adapter, ArmAdapter) else None
    if isinstance(adapter, ArmAdapter):
        low, high = (model.jnt_range[[model.joint(j).id for j in adapter.joint_names]] + [0.01, -0.01]).T
        return SafetyConfig(
            embodiment="arm", size=len(adapter.names), period=adapter.period,
            position_low=low.tolist(), position_high=high.tolist(), max_velocity=PANDA_MAX_VELOCITY,
            max_acceleration=PANDA_MAX_ACCELERATION, max_step=0.25,
            workspace_low=ARM_WORKSPACE[0], workspace_high=ARM_WORKSPACE[1])
    import gymnasium as gym

    env = gym.make(env_id).unwrapped
    m = env.model
    ids = [m.joint(n).id for n in adapter.names]
    low, high = m.jnt_range[ids].T
    period = 1.0 / env.control_hz
    env.close()
    return SafetyConfig(embodiment="humanoid", size=len(adapter.names), period=period,
                        position_low=low.tolist(), position_high=high.tolist(), max_step=0.5)


def declare_limits(node: Any, defaults: SafetyConfig) -> SafetyConfig:
    """Declare every :class:`SafetyConfig` field as a ``limits.<field>`` parameter of ``node`` (default: the
    value in ``defaults``) and return the configuration the parameters give."""
    from rcl_interfaces.msg import ParameterDescriptor

    values = {}
    for f in dataclasses.fields(SafetyConfig):
        default = getattr(defaults, f.name)
        if isinstance(default, list) and not default:
            desc = ParameterDescriptor(description="limit (unset: none)", dynamic_typing=True)
            param = node.declare_parameter(f"limits.{f.name}", None, desc)
            values[f.name] = list(param.value) if param.value is not None else []
        else:
            desc = ParameterDescriptor(description="limit", dynamic_typing=True)
            values[f.name] = node.declare_parameter(f"limits.{f.name}", default, desc).value
            if isinstance(default, list):
                values[f.name] = [float(v) for v in values[f.name]]
    return SafetyConfig(**values)


def state_qos() -> Any:
    """QoS of ``safety/state``: reliable, transient local, depth 1 (a late joiner gets the current state)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
