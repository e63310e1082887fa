"""The policy node takes images: decoding (Image rgb8/bgr8, CompressedImage jpeg/png), hostile images refused and
counted, pairing with the observation by stamp, no command without a fresh image, and a real graph (twin
publishing a camera, the policy node running a pixel policy, the safety node) commanding the robot."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import Client, fresh_domain  # noqa: E402
from tests_support import can_render  # noqa: E402

from robolearn.ros_nodes.convert import MessageError, image_msg, observation_msg  # noqa: E402
from robolearn.ros_nodes.image_sync import CameraInputs  # noqa: E402
from robolearn.ros_nodes.images import compressed_image_msg, decode  # noqa: E402

LIFT = "robolearn/PandaLift-v0"
SIZE = 32
PROPRIO = ["gripper", "joint_pos"]


def _frame(seed: int = 0, h: int = 24, w: int = 40) -> np.ndarray:
    """A smooth test picture (JPEG keeps it within a few levels) with some texture."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 255 / (w + h)], -1)
    return np.clip(base + rng.integers(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def test_every_encoding_decodes_to_the_raw_frame():
    from sensor_msgs.msg import Image

    rgb = _frame()
    np.testing.assert_array_equal(decode(image_msg(rgb, 1.0, "front")), rgb)
    bgr = image_msg(np.ascontiguousarray(rgb[..., ::-1]), 1.0, "front")
    bgr.encoding = "bgr8"
    np.testing.assert_array_equal(decode(bgr), rgb)
    padded = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3 + 8)
    padded.data = np.pad(rgb.reshape(rgb.shape[0], -1), ((0, 0), (0, 8))).tobytes()  # rows with padding
    np.testing.assert_array_equal(decode(padded), rgb)
    np.testing.assert_array_equal(decode(compressed_image_msg(rgb, 1.0, "front", "png")), rgb)
    jpeg = decode(compressed_image_msg(rgb, 1.0, "front", "jpeg", quality=95))
    assert jpeg.shape == rgb.shape and np.abs(jpeg.astype(int) - rgb).mean() < 3.0
    alias = compressed_image_msg(rgb, 1.0, "front", "jpeg")
    alias.format = "rgb8; jpeg compressed bgr8"  # image_transport's format string
    assert decode(alias).shape == rgb.shape


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header (with a valid CRC) declares ``width`` x ``height`` and whose data is 1x1."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00\x00\x00\x00")
    tail = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + chunk + tail + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def _hostile() -> list[tuple[object, str]]:
    """Broken or malicious images, each with the reason it must be counted under."""
    from sensor_msgs.msg import CompressedImage, Image

    rgb = _frame()
    mono = image_msg(rgb, 1.0, "front")
    mono.encoding = "mono8"
    short = image_msg(rgb, 1.0, "front")
    short.data = short.data[:-5]
    narrow = image_msg(rgb, 1.0, "front")
    narrow.step = 10
    huge = Image(height=100_000, width=100_000, encoding="rgb8", step=300_000)
    garbage = CompressedImage(format="jpeg")
    garbage.data = b"\xff\xd8not a jpeg at all"
    bomb = CompressedImage(format="png")
    bomb.data = _png_declaring(60_000, 60_000)
    liar = compressed_image_msg(rgb, 1.0, "front", "png")
    liar.format = "jpeg"
    tiff = CompressedImage(format="tiff")
    tiff.data = b"II*\x00"
    return [(mono, "encoding"), (short, "size mismatch"), (narrow, "size mismatch"), (huge, "dimensions"),
            (garbage, "undecodable"), (bomb, "dimensions"), (liar, "encoding"), (tiff, "encoding")]


def test_hostile_images_are_refused_in_one_line_and_counted():
    for msg, reason in _hostile():
        with pytest.raises(MessageError) as err:
            decode(msg)
        assert err.value.reason == reason and "\n" not in str(err.value), (reason, str(err.value))
    inputs = CameraInputs({"front": (SIZE, SIZE)}, max_age=0.1)
    for msg, _ in _hostile():
        msg.header.stamp.sec = 1
        assert not inputs.add("front", msg)
    assert inputs.refused == {"encoding": 3, "size mismatch": 2, "dimensions": 2, "undecodable": 1}
    assert inputs.pick(1.0) is None and inputs.missing == 1  # nothing refused was kept


def test_frames_pair_with_the_state_by_stamp_and_are_resized():
    inputs = CameraInputs({"front": (SIZE, SIZE), "wrist": (16, 20)}, max_age=0.1)
    assert inputs.pick(10.0) is None and inputs.missing == 1
    for t in (9.80, 9.95, 10.05):
        inputs.add("front", image_msg(_frame(int(t * 100)), t, "front"))
    inputs.add("wrist", image_msg(_frame(), 9.97, "wrist"))
    frames = inputs.pick(10.0)  # the newest within 0.1 s: 10.05 (front), 9.97 (wrist)
    assert frames is not None and frames["pixels/front"].shape == (SIZE, SIZE, 3)
    assert frames["pixels/wrist"].shape == (16, 20, 3)
    assert inputs.pick(9.99)["pixels/front"] is inputs.pick(10.0)["pixels/front"]
    assert inputs.pick(10.3) is None and inputs.stale == 1  # every frame too old
    assert inputs.pick(9.5) is None and inputs.stale == 2  # every frame too far ahead
    summary = inputs.summary()
    assert summary["received"] == {"front": 3, "wrist": 1} and summary["decode_p50_ms"] >= 0.0
    assert "resize_p99_ms" in summary


def pixel_policy_dir(path, size: int = SIZE):
    """An untrained BC policy reading proprioception + the front camera (enough for plumbing and latency)."""
    from robolearn.policies.checkpoint import make_policy, save
    from robolearn.policies.configuration import BCConfig, EncoderConfig, PolicyConfig
    from robolearn.sim.registry import gym_make

    env = gym_make(LIFT)
    shapes = {k: list(env.observation_space[k].shape) for k in PROPRIO} | {"pixels/front": [size, size, 3]}
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    env.close()
    cfg = PolicyConfig(type="bc", obs_shapes=shapes, action_dim=len(low), n_obs_steps=1, horizon=4,
                       n_action_steps=2, bc=BCConfig(hidden_dims=[32]),
                       encoder=EncoderConfig(image_channels=[8, 16], image_feature_dim=16))
    policy = make_policy(cfg)
    stats = {k: {"min": -np.ones(s[0]), "max": np.ones(s[0]), "mean": np.zeros(s[0]), "std": np.ones(s[0])}
             for k, s in shapes.items() if not k.startswith("pixels/")}
    mid, half = (low + high) / 2, (high - low) / 2
    gentle = {"min": mid - 0.1 * half, "max": mid + 0.1 * half, "mean": mid, "std": half}  # small random actions
    policy.set_stats(stats | {"action": gentle})
    return save(policy, path)


def _obs_msg(step: int, stamp: float):
    from robolearn.sim.registry import gym_make

    env = gym_make(LIFT)
    obs, _ = env.reset(seed=0)
    env.close()
    return observation_msg(obs, stamp, 0, step)


def test_pixel_policy_node_feeds_no_object_state_and_sends_nothing_without_a_fresh_image(tmp_path):
    """A PandaLift policy on proprioception + the front camera: the node subscribes to that camera and feeds the
    policy joint/gripper state and pixels only (no object_*, no goal); an observation without an image within
    max_image_age gets no command (counted), one with it does; hostile images are refused and counted."""
    from rclpy.parameter import Parameter
    from std_msgs.msg import Float64MultiArray

    from robolearn.ros_nodes.policy_node import PolicyNode

    client = Client(fresh_domain())
    path = pixel_policy_dir(tmp_path / "pixel_bc")
    node = PolicyNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("policy", value=str(path)), Parameter("inference", value="thread"),
        Parameter("wait_for_listener", value=False), Parameter("max_image_age", value=0.1),
        Parameter("gc_freeze", value=False)])
    client.executor.add_node(node)
    fed: list[dict] = []
    push = node.runner.push
    node.runner.push = lambda obs, meta, wake=True: (fed.append(dict(obs)), push(obs, meta, wake))[1]
    actions: list = []
    client.node.create_subscription(Float64MultiArray, "action", actions.append, 10)
    try:
        topics = {name for name, _ in node.get_topic_names_and_types()}
        assert {"/image/front", "/image/front/compressed"} <= topics
        node.on_obs(_obs_msg(0, 5.0))  # no image yet: missing
        assert node.cameras.missing == 1 and not fed and node.blind
        node.cameras.add("front", image_msg(_frame(h=48, w=48), 4.5, "front"))
        node.on_obs(_obs_msg(1, 5.0))  # only a 0.5 s old frame: stale
        assert node.cameras.stale == 1 and not fed
        client.spin_for(0.3)
        assert not actions and node.stats.published == 0
        node.cameras.add("front", compressed_image_msg(_frame(h=48, w=48), 5.98, "front", "jpeg"))
        for step in range(2, 6):
            node.on_obs(_obs_msg(step, 6.0))
            client.spin_until(lambda s=step: len(actions) >= s - 1, 3.0)
        assert actions and node.stats.published >= 1 and not node.blind
        assert set(fed[0]) == {*PROPRIO, "pixels/front"} and fed[0]["pixels/front"].shape == (SIZE, SIZE, 3)
        for msg, _ in _hostile():
            node.cameras.add("front", msg)
        node.report()
        timing: list = []
        from std_msgs.msg import String

        client.node.create_subscription(String, "policy/timing", lambda m: timing.append(json.loads(m.data)), 10)
        assert client.spin_until(lambda: bool(timing), 3.0)
        vision = timing[-1]["vision"]
        assert vision["inputs"] == [*PROPRIO, "pixels/front"] and vision["missing"] == 1 and vision["stale"] == 1
        assert sum(vision["refused"].values()) == len(_hostile()) and "decode_p50_ms" in vision
    finally:
        node.close()
        node.destroy_node()
        client.close()


@pytest.mark.slow
@pytest.mark.skipif(not can_render(), reason="no offscreen GL here (see scripts/ensure_gl.sh)")
def test_twin_camera_pixel_policy_and_safety_command_the_robot_and_stop_without_images(tmp_path):
    """Twin (front camera as JPEG) + policy node (pixel BC) + safety node, in-process: the robot is commanded
    from paired images; once the twin's camera stops the policy sends nothing and the watchdog takes over."""
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from robolearn.ros_nodes.policy_node import PolicyNode
    from robolearn.ros_nodes.safety_node import SafetyNode
    from robolearn.ros_nodes.sim_robot_node import SimRobotNode

    client = Client(fresh_domain())
    path = pixel_policy_dir(tmp_path / "pixel_bc")
    twin = SimRobotNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("episode_steps", value=100_000), Parameter("start_delay", value=0.0),
        Parameter("camera", value="front"), Parameter("image_size", value=48), Parameter("image_format", value="jpeg")])
    policy = PolicyNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("policy", value=str(path)), Parameter("inference", value="thread"),
        Parameter("gc_freeze", value=False)])
    safety = SafetyNode(context=client.context, parameter_overrides=[Parameter("env_id", value=LIFT)])
    state: dict = {"safety": {}, "twin": {}, "timing": {}}
    for topic, key in (("safety/status", "safety"), ("sim_robot/status", "twin"), ("policy/timing", "timing")):
        client.node.create_subscription(String, topic, lambda m, k=key: state.update({k: json.loads(m.data)}), 10)
    nodes = [twin, policy, safety]
    for node in nodes:
        client.executor.add_node(node)
    try:
        commanded = lambda: (state["timing"].get("published", 0) >= 20 and state["safety"].get("fallback") is False  # noqa: E731
                             and state["twin"].get("accepted", 0) >= 20)
        assert client.spin_until(commanded, 60.0), state
        vision = state["timing"]["vision"]
        assert vision["paired"] >= 20 and vision["received"]["front"] >= 20 and not vision["refused"], vision
        assert vision["inputs"] == [*PROPRIO, "pixels/front"]
        twin.img_pubs.clear()  # the camera stops; observations go on
        # the last frame pairs with observations until it is max_image_age old (how many depends on the load);
        # from the first stale pairing on every pairing is stale, since no frame comes any more
        assert client.spin_until(lambda: policy.cameras.stale >= 1, 10.0), state
        published = policy.stats.published
        assert client.spin_until(lambda: state["safety"].get("fallback") is True and policy.cameras.stale >= 5, 10.0), \
            state
        assert policy.stats.published <= published + 2  # at most what was in flight at the first stale pairing
    finally:
        for node in nodes:
            node.close()
            node.destroy_node()
        client.close()


@pytest.mark.skipif(not can_render(), reason="no offscreen GL here (see scripts/ensure_gl.sh)")
def test_twin_publishes_the_tasks_own_randomized_frames_as_png():
    """With the task's pixels (and visual randomization) in its settings, the twin publishes exactly the task's
    ``pixels/<camera>`` frame, lossless as PNG, stamped like and before the observation."""
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage
    from std_msgs.msg import Float64MultiArray

    from robolearn.ros_nodes.convert import stamp_to_sec
    from robolearn.ros_nodes.sim_robot_node import SimRobotNode

    client = Client(fresh_domain())
    task = {"pixels": {"cameras": ["front"], "width": SIZE, "height": SIZE}, "visual": {"noise_std": [3.0, 3.0]}}
    twin = SimRobotNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=LIFT), Parameter("start_delay", value=0.0), Parameter("task", value=json.dumps(task)),
        Parameter("wait_for_commander", value=False), Parameter("camera", value="front"),
        Parameter("image_format", value="png")])
    client.executor.add_node(twin)
    sent: dict = {}  # publish stamp (s) -> the task's frame
    publish = twin.publish_images
    twin.publish_images = lambda now: (sent.update({now: twin.robot.obs["pixels/front"].copy()}), publish(now))
    images: list = []
    observations: list = []
    client.node.create_subscription(CompressedImage, "image/front/compressed", images.append, qos_profile_sensor_data)
    client.node.create_subscription(Float64MultiArray, "observation", observations.append, qos_profile_sensor_data)
    try:
        assert client.spin_until(lambda: len(images) >= 3 and len(observations) >= 3, 20.0)
        first = stamp_to_sec(images[0].header.stamp)
        stamp = min(sent, key=lambda t: abs(t - first))
        assert abs(stamp - first) < 1e-6
        np.testing.assert_array_equal(decode(images[0]), sent[stamp])
        assert any(abs(o.data[0] - first) < 1e-6 for o in observations)  # the observation of the same step
        with pytest.raises(ValueError, match="not in robolearn/PandaLift-v0"):
            twin._image_publishers("top", "raw")
    finally:
        twin.close()
        twin.destroy_node()
        client.close()
