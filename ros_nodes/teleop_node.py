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
from robolearn.ros_nodes.rosenv import declare_parameters, require_rclpy, run_node

require_rclpy()
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, qos_profile_sensor_data  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, String  # noqa: E402

ACTION_NAMES = ["dx", "dy", "dz", "dyaw", "gripper"]

DEVICES = ("joy", "gamepad")
"""What this node reads: ``joy`` (``sensor_msgs/Joy`` messages) or ``gamepad`` (a local pad through pygame);
both through :class:`~robolearn.teleop.gamepad.GamepadTeleop`. The keyboard and SpaceMouse of ``robolearn
teleop`` (:data:`robolearn.teleop.record.DEVICES`) need the terminal or the HID device of the machine that
runs the task, not a ROS graph."""

PARAMETERS = {
    "env_id": ("robolearn/PandaLift-v0", "task (arm tasks: end-effector delta actions)"),
    "device": ("joy", "joy (sensor_msgs/Joy on 'joy') or gamepad (a local pad via pygame)"),
    "rate_hz": (20.0, "publishing rate, Hz"),
    "max_step": (0.01, "TCP displacement per step at full deflection, m"),
    "max_yaw_step": (0.05, "yaw change per step at full deflection, rad"),
}
"""The node's parameters: name -> (default, description)."""


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


class TeleopNode(Node):
    """The teleop node; see the module docstring. ``**kwargs`` go to ``Node`` (``context``...)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("teleop", **kwargs)
        from sensor_msgs.msg import Joy

        from robolearn.teleop.base import EEDeltaMapping
        from robolearn.teleop.gamepad import GamepadTeleop

        p = declare_parameters(self, PARAMETERS)
        if p["device"] not in DEVICES:
            raise ValueError(f"teleop device must be 'joy' or 'gamepad', got {p['device']!r}")
        mapping = EEDeltaMapping(max_step=float(p["max_step"]), max_yaw_step=float(p["max_yaw_step"]))
        source = JoySource() if p["device"] == "joy" else None
        self.device = GamepadTeleop(source=source, mapping=mapping)
        if source is not None:
            self.create_subscription(Joy, "joy", source.update, qos_profile_sensor_data)
        self.flag = self.create_publisher(Bool, "intervention", QoSProfile(depth=1))
        self.action_pub = self.create_publisher(Float64MultiArray, "teleop/action", QoSProfile(depth=1))
        self.events = self.create_publisher(String, "teleop/event", QoSProfile(depth=10))
        self.create_timer(1.0 / float(p["rate_hz"]), self.tick)

    def tick(self) -> None:
        """Publish the intervention flag, the action while intervening, and the device's session events."""
        action = self.device.get_action()
        self.flag.publish(Bool(data=action is not None))
        if action is not None:
            self.action_pub.publish(action_msg(action, ACTION_NAMES))
        for event in self.device.events():
            self.events.publish(String(data=event.value))

    def close(self) -> None:
        """Release the device."""
        self.device.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(TeleopNode, argv)


if __name__ == "__main__":
    sys.exit(main())
