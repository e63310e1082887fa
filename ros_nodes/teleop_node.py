"""``teleop_node``: a person's commands and an intervention flag, for human-in-the-loop on a robot.

The device is robolearn's :class:`~robolearn.teleop.gamepad.GamepadTeleop` (same mapping, dead zone and
buttons as ``robolearn teleop``), read either from a ``sensor_msgs/Joy`` topic (``device: joy``, the
ROS ``joy_node`` driver) or from a local pad through pygame (``device: gamepad``). At ``rate_hz`` it
publishes ``intervention`` (``std_msgs/Bool``: true while a stick is deflected or control is taken
over), ``teleop/action`` (``std_msgs/Float64MultiArray``: the arm's end-effector delta action ``(5,)``:
dx, dy, dz m, dyaw rad, gripper 0..1) while intervening, and session events (start/stop, success...)
as ``teleop/event`` (``std_msgs/String``). The policy node swaps the teleop action in while
``intervention`` is true; the recorder stores the flag with each step.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from robolearn.ros_nodes.convert import action_msg
from robolearn.ros_nodes.rosenv import require_rclpy, shutdown_node, spin_until_shutdown

ACTION_NAMES = ["dx", "dy", "dz", "dyaw", "gripper"]


class JoySource:
    """A :class:`~robolearn.teleop.gamepad.JoystickSource` fed by ``sensor_msgs/Joy`` messages."""

    def __init__(self) -> None:
        self.axes, self.buttons = np.zeros(0), np.zeros(0, dtype=np.int64)

    def update(self, msg: Any) -> None:
        self.axes = np.asarray(msg.axes, np.float64)
        self.buttons = np.asarray(msg.buttons, np.int64)

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        return self.axes, self.buttons

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    rclpy = require_rclpy()
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Joy
    from std_msgs.msg import Bool, Float64MultiArray, String

    from robolearn.teleop.base import EEDeltaMapping
    from robolearn.teleop.gamepad import GamepadTeleop

    rclpy.init(args=argv if argv is not None else sys.argv)
    node = rclpy.create_node("teleop")
    defaults = {
        "env_id": ("robolearn/PandaLift-v0", "task (arm tasks: end-effector delta actions)"),
        "device": ("joy", "joy (sensor_msgs/Joy on 'joy') or gamepad (a local pad via pygame)"),
        "rate_hz": (20.0, "publishing rate, Hz"),
        "max_step": (0.01, "TCP displacement per step at full deflection, m"),
        "max_yaw_step": (0.05, "yaw change per step at full deflection, rad"),
    }
    p = {k: node.declare_parameter(k, v, ParameterDescriptor(description=d, dynamic_typing=True)).value
         for k, (v, d) in defaults.items()}
    if p["device"] not in ("joy", "gamepad"):
        raise ValueError(f"teleop device must be 'joy' or 'gamepad', got {p['device']!r}")
    mapping = EEDeltaMapping(max_step=float(p["max_step"]), max_yaw_step=float(p["max_yaw_step"]))
    source = JoySource() if p["device"] == "joy" else None
    device = GamepadTeleop(source=source, mapping=mapping)
    if source is not None:
        node.create_subscription(Joy, "joy", source.update, qos_profile_sensor_data)
    flag = node.create_publisher(Bool, "intervention", QoSProfile(depth=1))
    action_pub = node.create_publisher(Float64MultiArray, "teleop/action", QoSProfile(depth=1))
    events = node.create_publisher(String, "teleop/event", QoSProfile(depth=10))

    def tick() -> None:
        action = device.get_action()
        flag.publish(Bool(data=action is not None))
        if action is not None:
            action_pub.publish(action_msg(action, ACTION_NAMES))
        for event in device.events():
            events.publish(String(data=event.value))

    node.create_timer(1.0 / float(p["rate_hz"]), tick)
    try:
        spin_until_shutdown(node)
    finally:
        device.close()
        shutdown_node(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
