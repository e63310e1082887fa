"""The twin takes task settings as a JSON parameter (what the pipeline's ``task`` becomes over ROS 2)."""

from __future__ import annotations

import pytest

from robolearn.ros_nodes.sim_robot import SimRobot, task_settings


def test_task_settings_reach_the_twin():
    robot = SimRobot("robolearn/G1PushRecovery-v0", env_kwargs=task_settings('{"push_force": 120.0}'))
    assert robot.env.unwrapped.push_force == 120.0


@pytest.mark.parametrize(("text", "expected"), [
    ("{push_force: 1}", "task parameter is not JSON"),
    ("[120]", "task parameter must be a JSON object of task settings, got list"),
])
def test_bad_task_settings_are_refused_in_one_line(text, expected):
    with pytest.raises(ValueError, match=expected) as err:
        task_settings(text)
    assert "\n" not in str(err.value)
