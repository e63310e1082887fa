"""Message conversions and robot adapters (real ROS message types; no graph)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from robolearn.ros_nodes.convert import (  # noqa: E402
    MessageError,
    action_msg,
    image_msg,
    observation_msg,
    parse_action,
    parse_observation,
    parse_tagged_action,
    sec_to_stamp,
    stamp_to_sec,
)
from robolearn.ros_nodes.embodiments.arm import ArmAdapter  # noqa: E402
from robolearn.ros_nodes.embodiments.humanoid import HumanoidAdapter  # noqa: E402
from robolearn.ros_nodes.embodiments.quadrotor import QuadrotorAdapter  # noqa: E402
from robolearn.ros_nodes.safety import Command  # noqa: E402

LIFT = "robolearn/PandaLift-v0"


def test_observation_round_trip_keeps_names_values_and_bookkeeping():
    obs = {"joint_pos": np.arange(7, dtype=np.float32), "gripper": np.array([0.5], np.float32),
           "pixels/front": np.zeros((4, 4, 3), np.uint8)}
    back, meta = parse_observation(observation_msg(obs, 12.5, 3, 40))
    assert set(back) == {"joint_pos", "gripper"} and back["joint_pos"].dtype == np.float32
    np.testing.assert_array_equal(back["joint_pos"], obs["joint_pos"])
    assert meta == {"stamp": 12.5, "episode": 3.0, "step": 40.0}
    with pytest.raises(MessageError, match="lacks \\['object_pos'\\]"):
        parse_observation(observation_msg(obs, 0.0, 0, 0), keys=["object_pos"])


def test_action_parsing_rejects_wrong_size_and_nan():
    msg = action_msg(np.array([0.1, 0.2]), ["a", "b"])
    np.testing.assert_allclose(parse_action(msg, 2), [0.1, 0.2])
    with pytest.raises(MessageError, match="size 2, expected 5"):
        parse_action(msg, 5)
    msg.data = [0.1, float("nan")]
    with pytest.raises(MessageError, match="NaN"):
        parse_action(msg, 2)


def test_a_tagged_action_names_the_observation_it_answers():
    msg = action_msg(np.array([0.1, 0.2]), ["a", "b"], {"stamp": 12.5, "episode": 3.0, "step": 40.0})
    action, meta = parse_tagged_action(msg)
    np.testing.assert_allclose(action, [0.1, 0.2])
    assert meta == {"stamp": 12.5, "episode": 3.0, "step": 40.0}
    np.testing.assert_allclose(parse_action(msg, 2), [0.1, 0.2])  # the tags are not part of the action
    from std_msgs.msg import Float64MultiArray

    plain = Float64MultiArray(data=[1.0, 2.0, 3.0])  # no layout: untagged
    action, meta = parse_tagged_action(plain)
    assert meta == {} and action.tolist() == [1.0, 2.0, 3.0]


def test_stamp_and_image_conversions():
    assert stamp_to_sec(sec_to_stamp(1234.000123)) == pytest.approx(1234.000123, abs=1e-9)
    img = image_msg(np.zeros((2, 3, 3), np.uint8), 1.0, "front")
    assert (img.height, img.width, img.encoding, img.step) == (2, 3, "rgb8", 9)
    with pytest.raises(MessageError, match="uint8"):
        image_msg(np.zeros((2, 3, 3), np.float32), 1.0, "front")


def test_arm_adapter_trajectory_round_trip_and_name_check():
    arm = ArmAdapter(LIFT)
    cmd = arm.command(np.array([0.01, 0.0, -0.01, 0.05, 1.0]), np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785]), 5.0)
    msg = arm.to_msg(cmd)
    assert msg.joint_names[-1] == "gripper" and len(msg.points[0].positions) == 8
    assert msg.points[0].time_from_start.nanosec == 50_000_000
    back = arm.from_msg(msg)
    assert back.stamp == pytest.approx(5.0)
    np.testing.assert_allclose(back.values, cmd.values)
    assert list(arm.forward_msg(cmd).data) == pytest.approx(cmd.values.tolist())
    msg.joint_names = list(reversed(msg.joint_names))
    with pytest.raises(MessageError, match="joint names"):
        arm.from_msg(msg)
    with pytest.raises(MessageError, match="size 3, expected 5"):
        arm.command(np.zeros(3), np.zeros(7), 0.0)


def test_arm_adapter_ik_matches_the_sim_in_lockstep():
    """Policy -> adapter -> joint targets -> twin, stepped in lockstep, equals direct simulation. The twin is
    driven through the core ``Robot`` protocol (``send_action`` / ``get_observation``), as a driver would be."""
    from robolearn.core.protocols import Robot
    from robolearn.policy_factory import make_policy
    from robolearn.ros_nodes.sim_robot import SimRobot
    from robolearn.sim.registry import gym_make

    robot = SimRobot(LIFT, seed=3)
    assert isinstance(robot, Robot)
    assert robot.info.control_hz == 20.0 and robot.info.action_features["action"].shape == (5,)
    direct = gym_make(LIFT)
    obs, _ = direct.reset(seed=3)
    robot.reset()
    assert set(robot.get_observation()) == set(robot.info.observation_features)
    p1, p2 = (make_policy("expert", LIFT, direct.action_space) for _ in range(2))
    for _ in range(30):
        a = p1.act({k: v[None] for k, v in obs.items()})[0, 0]
        obs, *_ = direct.step(a)
        b = p2.act({k: v[None] for k, v in robot.get_observation().items()})[0, 0]
        np.testing.assert_array_equal(robot.send_action(b), b)
        robot.step()
    np.testing.assert_allclose(robot.get_observation()["ee_pos"], obs["ee_pos"], atol=1e-4)


def test_humanoid_and_quadrotor_adapters_round_trip():
    hum = HumanoidAdapter(["a", "b"], kp=[100.0, 50.0], kd=[2.0, 1.0])
    cmd = hum.command(np.array([0.1, -0.2]), None, 2.0)
    back = hum.from_msg(hum.to_msg(cmd))
    np.testing.assert_allclose(back.values, [0.1, -0.2])
    np.testing.assert_allclose(back.kp, [100.0, 50.0])
    np.testing.assert_allclose(back.kd, [2.0, 1.0])
    quad = QuadrotorAdapter(action_order=(1, 2, 3, 0), thrust_scale=2.0)
    qcmd = quad.command(np.array([1.0, 0.1, 0.2, 0.3]), None, 3.0)
    np.testing.assert_allclose(qcmd.values, [0.1, 0.2, 0.3, 0.5])
    np.testing.assert_allclose(quad.to_action(quad.from_msg(quad.to_msg(qcmd))), [1.0, 0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="permutation"):
        QuadrotorAdapter(action_order=(0, 0, 1, 2))
    assert isinstance(cmd, Command)
