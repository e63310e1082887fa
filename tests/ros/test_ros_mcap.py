"""MCAP recording: schemas from the installed .msg files, CDR bytes from rclpy, decoded by mcap-ros2-support."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("mcap_ros2")

from robolearn.ros_nodes.mcap_log import SEPARATOR, McapLog, msgdef  # noqa: E402


def test_msgdef_lists_each_dependency_once_after_the_type():
    text = msgdef("sensor_msgs/msg/JointState")
    assert "float64[] position" in text.split(SEPARATOR)[0]
    deps = [line for line in text.splitlines() if line.startswith("MSG: ")]
    assert deps == ["MSG: std_msgs/Header", "MSG: builtin_interfaces/Time"]
    multi = [line for line in msgdef("std_msgs/msg/Float64MultiArray").splitlines() if line.startswith("MSG: ")]
    assert multi == ["MSG: std_msgs/MultiArrayLayout", "MSG: std_msgs/MultiArrayDimension"]
    with pytest.raises(FileNotFoundError, match="no message definition for nope_msgs/msg/Thing"):
        msgdef("nope_msgs/msg/Thing")


def test_serialized_messages_round_trip_through_an_mcap_file(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    path = tmp_path / "run.mcap"
    log = McapLog(path)
    log.add_topic("/observation", "std_msgs/msg/Float64MultiArray")
    log.add_topic("/joint_states", "sensor_msgs/msg/JointState")
    for i in range(5):
        log.write("/observation", serialize_message(Float64MultiArray(data=[float(i), 0.5])), 1_000_000 * i)
        js = JointState(name=["a", "b"], position=[0.1 * i, -0.2])
        js.header.stamp.sec = i
        log.write("/joint_states", serialize_message(js), 1_000_000 * i + 1)
    log.close()
    with pytest.raises(FileExistsError, match="exists"):
        McapLog(path)  # a recording is never overwritten

    with open(path, "rb") as f:
        msgs = list(make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages())
    obs = [m for _, c, _, m in msgs if c.topic == "/observation"]
    joints = [m for _, c, _, m in msgs if c.topic == "/joint_states"]
    assert [list(m.data) for m in obs] == [[float(i), 0.5] for i in range(5)]
    assert [m.header.stamp.sec for m in joints] == list(range(5)) and joints[3].position[0] == pytest.approx(0.3)
    assert msgs[0][0].name == "std_msgs/msg/Float64MultiArray"
