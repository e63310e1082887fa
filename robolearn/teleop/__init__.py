"""Teleoperation: human input devices behind the :class:`~robolearn.core.protocols.Teleop` protocol.

Each device maps its input to end-effector delta commands ``(5,)`` = ``[dx, dy, dz (m), dyaw (rad),
gripper (0 open .. 1 closed)]`` per control step (:class:`EEDeltaMapping`), returns None from
``get_action()`` when the person is not intervening, and reports session events (start/stop, success,
failure, discard, quit) from ``events()``. Inputs come from a *source* object so tests can script them:

* :mod:`robolearn.teleop.keyboard`: a terminal keyboard (no X needed);
* :mod:`robolearn.teleop.gamepad`: a gamepad through pygame (``pip install pygame``);
* :mod:`robolearn.teleop.spacemouse`: a 3Dconnexion SpaceMouse through pyspacemouse
  (``pip install pyspacemouse``).

:mod:`robolearn.teleop.session` runs the record loop.
"""

from robolearn.teleop.base import EEDeltaMapping, TeleopDevice, TeleopEvent

__all__ = ["EEDeltaMapping", "TeleopDevice", "TeleopEvent"]
