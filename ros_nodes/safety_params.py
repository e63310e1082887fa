"""The safety filter's ROS-side settings, shared by ``safety_node`` and the policy node's inline filter.

:func:`declare_limits` exposes every :class:`~robolearn.ros_nodes.safety.SafetyConfig` field as a
``limits.<field>`` node parameter over the embodiment's defaults (``Embodiment.default_safety``: a task's
joint ranges, datasheet rates, control period); :func:`state_qos` is the QoS of ``safety/state``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from robolearn.ros_nodes.safety import SafetyConfig


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
