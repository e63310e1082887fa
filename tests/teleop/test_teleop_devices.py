"""Teleop devices map scripted input events to end-effector delta commands and session events."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from robolearn.core.protocols import Teleop
from robolearn.teleop.base import EEDeltaMapping, TeleopEvent
from robolearn.teleop.gamepad import GamepadTeleop, ScriptedJoystick
from robolearn.teleop.keyboard import KeyboardTeleop, ScriptedKeys
from robolearn.teleop.spacemouse import ScriptedSpaceMouse, SpaceMouseState, SpaceMouseTeleop

MAP = EEDeltaMapping(max_step=0.01, max_yaw_step=0.1)


def test_keyboard_moves_holds_and_releases():
    kb = KeyboardTeleop(ScriptedKeys(["w", "", "", "", "ad", "z", " ", "", "\x1b[A"]), MAP, hold_steps=3)
    assert isinstance(kb, Teleop)
    actions = [kb.get_action() for _ in range(9)]
    np.testing.assert_allclose(actions[0], [0.01, 0, 0, 0, 0])
    assert actions[2] is not None and actions[3] is None  # held for 3 steps after the press
    np.testing.assert_allclose(actions[4], [0, -0.01, 0, 0, 0])  # last of a/d wins
    np.testing.assert_allclose(actions[5][3], 0.1)
    assert actions[6][4] == 1.0  # space closed the gripper (and counts as intervening)
    assert kb.events() == []  # arrow keys are ignored, not read as Esc
    np.testing.assert_allclose(kb.hold_action(), [0, 0, 0, 0, 1.0])


def test_keyboard_session_keys():
    kb = KeyboardTeleop(ScriptedKeys(["\n", "y", "n", "x", "t", "Q"]), MAP)
    events = []
    for _ in range(6):
        kb.get_action()
        events += kb.events()
    assert events == [TeleopEvent.START_STOP, TeleopEvent.SUCCESS, TeleopEvent.FAILURE, TeleopEvent.DISCARD,
                      TeleopEvent.TAKEOVER, TeleopEvent.QUIT]
    assert kb.takeover


def test_gamepad_deadzone_axes_and_button_edges():
    axes_forward = [0.0, -1.0, 0.0, 0.0, 0.0, 0.0]
    readings = [
        ([0.05, -0.1, 0, 0, 0, 0], [0] * 8),  # inside the dead zone: no intervention
        (axes_forward, [0] * 8),
        ([0, 0, 0, -0.5, 1.0, 0], [1, 0, 0, 0, 0, 1, 0, 0]),  # A pressed, RB toggles the gripper
        ([0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 1, 0, 0]),  # still held: no new events
    ]
    pad = GamepadTeleop(ScriptedJoystick(readings), MAP)
    assert pad.get_action() is None
    np.testing.assert_allclose(pad.get_action(), [0.01, 0, 0, 0, 0])
    a = pad.get_action()
    np.testing.assert_allclose(a, [0, 0, -0.01, 0.05, 1.0])
    assert pad.events() == [TeleopEvent.START_STOP]
    assert pad.get_action() is None and pad.events() == [] and pad.gripper == 1.0


def test_spacemouse_mapping_and_buttons():
    states = [SpaceMouseState(x=0.5, y=1.0, z=-0.2, yaw=0.4), SpaceMouseState(buttons=(1, 0)),
              SpaceMouseState(buttons=(1, 1)), SpaceMouseState(x=0.05)]
    sm = SpaceMouseTeleop(ScriptedSpaceMouse(states), MAP)
    np.testing.assert_allclose(sm.get_action(), [0.01, -0.005, -0.002, -0.04, 0.0])
    assert sm.get_action()[4] == 1.0
    assert sm.get_action() is None and sm.events() == [TeleopEvent.START_STOP]
    assert sm.get_action() is None  # inside the dead zone


@pytest.mark.skipif(importlib.util.find_spec("pyspacemouse") is not None, reason="pyspacemouse installed")
def test_missing_spacemouse_package_is_named():
    with pytest.raises(ImportError, match="pip install pyspacemouse"):
        SpaceMouseTeleop()


@pytest.mark.skipif(importlib.util.find_spec("pygame") is not None, reason="pygame installed")
def test_missing_pygame_is_named():
    with pytest.raises(ImportError, match="pip install pygame"):
        GamepadTeleop()


def test_device_list_is_one_dict_the_cli_offers():
    import argparse

    from robolearn.cli import teleop as teleop_cli
    from robolearn.teleop.devices import DEVICES, make_device

    parser = argparse.ArgumentParser()
    teleop_cli.add_arguments(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "device")
    assert list(choices) == list(DEVICES) == ["keyboard", "gamepad", "spacemouse"]
    device = make_device("keyboard", EEDeltaMapping(), ScriptedKeys([]))
    assert isinstance(device, KeyboardTeleop) and isinstance(device, Teleop)
    with pytest.raises(ValueError, match="unknown teleop device 'joystick'; choose from keyboard, gamepad"):
        make_device("joystick", EEDeltaMapping())
