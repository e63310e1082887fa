"""Fuzz (hypothesis) the command path: whatever a publisher sends, no unsafe command comes out.

Two layers, both as the nodes run them, without a ROS graph:

* the safety filter (what the safety node and the inline filter run on the policy's commands): any
  command, finite or not, of any length, stamped at any time, is refused or comes out finite, of the
  robot's length and inside its position limits;
* the twin's arrival path (what the robot's driver runs on its command topic): a ``JointTrajectory`` with
  arbitrary joint names (any subset, any order), point counts and values is refused by the adapter or the
  command guard, or every setpoint sampled along it is finite and within the robot's physical range; with
  the e-stop latched nothing is admitted.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robolearn.ros_nodes.embodiments import EMBODIMENTS
from robolearn.ros_nodes.embodiments.base import TwinPlan
from robolearn.ros_nodes.safety import Command, SafetyConfig, SafetyFilter

pytest.importorskip("trajectory_msgs.msg", reason="the ROS 2 message wheels are in the ros extra")

LOW, HIGH = np.full(7, -2.8), np.full(7, 2.8)
Q0 = np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785])
FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
values = st.lists(anything, min_size=0, max_size=12)


def arm_filter() -> SafetyFilter:
    cfg = SafetyConfig(embodiment="arm", size=8, period=0.05, position_low=list(LOW), position_high=list(HIGH),
                       max_velocity=[2.0] * 7, max_acceleration=[20.0] * 7, max_step=0.25)
    f = SafetyFilter(cfg, EMBODIMENTS["arm"].safety_checks(cfg))
    f.update_state(joint_pos=Q0)
    return f


@FUZZ
@given(commands=st.lists(st.tuples(values, st.floats(-10, 10), st.floats(0, 5)), min_size=1, max_size=8))
def test_the_filter_forwards_only_safe_commands(commands):
    f = arm_filter()
    for vals, stamp_offset, now in commands:
        verdict = f.filter(Command(now + stamp_offset, np.asarray(vals, np.float64)), now=now)
        if verdict.command is None:
            assert verdict.reason
            continue
        out = np.asarray(verdict.command.values, np.float64)
        assert out.shape == (8,) and np.isfinite(out).all()
        assert (out[:7] >= LOW - 1e-9).all() and (out[:7] <= HIGH + 1e-9).all()
        assert 0.0 - 1e-9 <= out[7] <= 1.0 + 1e-9


@pytest.fixture(scope="module")
def twin_path():
    """The PandaLift twin's adapter and command guard, as ``SimRobot`` builds them."""
    from robolearn.ros_nodes.command_guard import CommandGuard

    emb = EMBODIMENTS["arm"]
    adapter = emb.make_adapter("robolearn/PandaLift-v0")
    return adapter, lambda: CommandGuard(emb, adapter, "robolearn/PandaLift-v0")


ARM = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7", "gripper"]
names = st.one_of(st.just(ARM), st.lists(st.sampled_from([*ARM, "", "joint8", "../x"]), min_size=0, max_size=9))
PANDA = [(-2.9173, 2.9173), (-1.7828, 1.7828), (-2.9173, 2.9173), (-3.0918, -0.0498), (-2.9173, 2.9173),
         (-0.0375, 3.7725), (-2.9173, 2.9173), (0.0, 1.0)]
"""The Panda's joint ranges (rad) and the gripper closure, as in the Menagerie model."""
near = st.tuples(*[st.floats(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)) for lo, hi in PANDA]).map(list)
"""Values around the robot's range: about half the commands inside it, the rest just outside."""


@FUZZ
@given(joint_names=names, points=st.lists(st.one_of(near, values), min_size=0, max_size=3), latched=st.booleans())
def test_the_twin_admits_only_commands_within_the_robot(twin_path, joint_names, points, latched):
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    adapter, make_guard = twin_path
    guard = make_guard()
    if latched:
        guard.latch()
    msg = JointTrajectory(joint_names=joint_names)
    for i, p in enumerate(points):
        msg.points.append(JointTrajectoryPoint(positions=[float(x) for x in p],
                                               time_from_start=Duration(sec=0, nanosec=50_000_000 * (i + 1))))
    try:  # the twin's path (SimRobot.receive): the trajectory, joints it leaves out holding the measured Q0
        points = EMBODIMENTS["arm"].twin_plan(adapter, msg, None, {"joint_pos": Q0, "gripper": np.zeros(1)})
    except ValueError:  # MessageError: names, lengths or times refused by the adapter
        return
    admitted = guard.admit_all([cmd for _, cmd in points])
    if latched:
        assert not admitted and guard.counts["e-stop latched"] == 1
    if admitted:  # every setpoint the twin samples between the points is finite and within the robot
        plan = TwinPlan(0.0, None, points)
        for t in np.linspace(0.0, plan.end + 0.1, 9):
            out = np.asarray(plan.sample(t).values, np.float64)
            assert out.shape == guard.bounds.low.shape and np.isfinite(out).all()
            assert (out >= guard.bounds.low).all() and (out <= guard.bounds.high).all()
    else:
        assert sum(guard.counts.values()) == 1


def test_the_accepting_side_of_the_twin_path(twin_path):
    """The path the fuzz above drives admits a trajectory inside the robot's range (so the fuzz's checks on
    admitted commands are reachable), and refuses the same one with the e-stop latched."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    adapter, make_guard = twin_path
    middle = [(lo + hi) / 2 for lo, hi in PANDA]
    msg = JointTrajectory(joint_names=ARM, points=[JointTrajectoryPoint(
        positions=middle, time_from_start=Duration(sec=0, nanosec=50_000_000))])
    points = EMBODIMENTS["arm"].twin_plan(adapter, msg, None, {"joint_pos": Q0, "gripper": np.zeros(1)})
    assert make_guard().admit_all([cmd for _, cmd in points])
    latched = make_guard()
    latched.latch()
    assert not latched.admit_all([cmd for _, cmd in points])
