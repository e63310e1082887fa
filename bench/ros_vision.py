"""The vision row's pieces of ``bench/ros_latency.py``: a camera frame for the robot stand-in to publish, and an
untrained pixel policy for the policy node to run (its inputs' and CNN's cost, not its skill)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LIFT = "robolearn/PandaLift-v0"


def camera_message(fmt: str, size: int) -> Any:
    """A rendered PandaLift ``front`` frame (``size`` square) as ``sensor_msgs/Image`` rgb8 (``fmt`` raw) or a
    jpeg / png ``CompressedImage``."""
    from robolearn.ros_nodes.convert import image_msg
    from robolearn.ros_nodes.images import compressed_image_msg
    from robolearn.sim.registry import gym_make

    env = gym_make(LIFT)
    env.reset(seed=0)
    frame = env.unwrapped.render_camera("front", size, size)
    env.close()
    return image_msg(frame, 0.0, "front") if fmt == "raw" else compressed_image_msg(frame, 0.0, "front", fmt)


def pixel_policy(directory: Path, size: int) -> str:
    """An untrained BC policy on ``gripper``, ``joint_pos`` and ``pixels/front`` (``size`` square), saved in
    ``directory``: the cost of a pixel policy's inputs and CNN, not its skill."""
    from robolearn.policies.checkpoint import make_policy, save
    from robolearn.policies.configuration import BCConfig, EncoderConfig, PolicyConfig
    from robolearn.sim.registry import gym_make

    env = gym_make(LIFT)
    shapes = {k: list(env.observation_space[k].shape) for k in ("gripper", "joint_pos")}
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    env.close()
    cfg = PolicyConfig(type="bc", obs_shapes=shapes | {"pixels/front": [size, size, 3]}, action_dim=len(low),
                       n_obs_steps=2, horizon=16, n_action_steps=8, bc=BCConfig(hidden_dims=[256, 256]),
                       encoder=EncoderConfig(image_channels=[32, 64, 128], image_feature_dim=64))
    policy = make_policy(cfg)
    stats = {k: {"min": -np.ones(s[0]), "max": np.ones(s[0]), "mean": np.zeros(s[0]), "std": np.ones(s[0])}
             for k, s in shapes.items()}
    mid, half = (low + high) / 2, (high - low) / 2
    policy.set_stats(stats | {"action": {"min": mid - 0.1 * half, "max": mid + 0.1 * half, "mean": mid, "std": half}})
    return str(save(policy, directory / "pixel_bc"))
