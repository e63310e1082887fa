"""The camera pipeline (configs/pipelines/panda_lift_vision.yaml) at smoke budgets, and what its deployed policy
reads: every stage runs (the held-out visual preset as a named condition, the ROS 2 twin's camera topics), and
no object-state key reaches the base's inputs, the refinement actor's or the ROS 2 policy node's."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from tests_support import can_render

from robolearn.core.config import load_config
from robolearn.pipeline.config import PipelineConfig
from robolearn.pipeline.layout import refine_stage_name
from robolearn.pipeline.validation import validate

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ["panda_lift_vision", "panda_peg_insert_vision"]
CAMERAS = ["pixels/front", "pixels/wrist"]

SMOKE = [
    "collect.episodes=2", "collect.num_envs=2", "train.steps=10", "train.save_every=10", "train.log_every=5",
    "train.progress=false", "train.data.batch_size=8", "eval.episodes=2", "eval.num_envs=2", "eval.videos=1",
    "eval.dynamics=[nominal]", "ros.episodes=1",
]

pytestmark = pytest.mark.skipif(not can_render(), reason="no offscreen GL here (see scripts/ensure_gl.sh)")


def _privileged(cfg: PipelineConfig, keys) -> list[str]:
    """The keys of ``keys`` that are the task's privileged state (neither proprioception nor a camera)."""
    from robolearn.sim.observation_keys import privileged_keys
    from robolearn.sim.registry import gym_make

    env = gym_make(cfg.env_id)
    proprio = env.unwrapped.proprioception_keys()
    env.close()
    return privileged_keys(keys, proprio)


@pytest.mark.parametrize("preset", PRESETS)
def test_vision_presets_read_no_privileged_state(preset):
    """Each vision preset loads, its base reads proprioception and both cameras, and each branch's inputs are
    the base's; a preset that lets object state in is refused in one line naming the key."""
    from robolearn.core.config import ConfigError
    from robolearn.pipeline.branches import refine_config

    cfg = validate(load_config(PipelineConfig, ROOT / f"configs/pipelines/{preset}.yaml"))
    assert not cfg.privileged and cfg.collect.cameras == ["front", "wrist"]
    assert 64 <= cfg.collect.image_size <= 96
    keys = cfg.train.policy.obs_keys
    assert set(CAMERAS) <= set(keys) and {"joint_pos", "joint_vel", "gripper"} <= set(keys)
    assert not _privileged(cfg, keys)
    for branch in cfg.refine:
        assert refine_config(cfg, branch).obs_keys == keys
        assert branch.settings["params"]["images"] == "base_features"
    assert "held-out" in cfg.eval.visual and "real-gap" in cfg.eval.dynamics
    leaky = load_config(PipelineConfig, ROOT / f"configs/pipelines/{preset}.yaml",
                        ["train.policy.obs_keys=[joint_pos,object_pos,pixels/front]"])
    with pytest.raises(ConfigError, match="object_pos is privileged") as err:
        validate(leaky)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory):
    """The lift vision preset run end to end at smoke budgets (the two tests below read it)."""
    from robolearn.pipeline.pipeline import run_pipeline

    pytest.importorskip("rclpy")
    run_dir = tmp_path_factory.mktemp("vision")
    os.environ["ROBOLEARN_ROS_DOMAIN"] = str(60 + (os.getpid() + 11) % 30)  # a private ROS domain
    try:
        cfg = load_config(PipelineConfig, ROOT / "configs/pipelines/panda_lift_vision.yaml",
                          [f"run_dir={run_dir}", *SMOKE])
        for branch in cfg.refine:
            branch.settings.update(total_env_steps=80, random_steps=40, critic_warmup_updates=5, eval_every=0,
                                   eval_episodes=2, eval_envs=2, checkpoint_every=0, num_envs=2, eval_budget=0,
                                   replay_capacity=200)
            branch.settings["learner"] = {**branch.settings["learner"], "hidden": [32, 32], "batch_size": 16}
        yield cfg, run_pipeline(cfg)  # the residual reads the base's frozen camera features (the preset's)
    finally:
        os.environ.pop("ROBOLEARN_ROS_DOMAIN", None)


@pytest.mark.slow
def test_vision_pipeline_runs_every_stage_with_cameras(vision_run):
    """Collect with cameras -> pixel diffusion base -> residual on pixels -> nominal and held-out visual
    evaluation -> the refined policy over ROS 2 on the twin's camera topics -> a report whose videos show what
    each camera saw."""
    import imageio.v3 as iio

    cfg, results = vision_run
    layout = cfg.layout
    assert list(results) == ["collect", "train", "eval_expert", "eval_base", "refine_residual", "ros", "report"]
    assert set(results["eval_base"]["success"]) == {"nominal", "held-out"}
    assert set(results[refine_stage_name("residual")]["success"]) == {"nominal", "held-out"}
    assert results["ros"]["episodes"] == 1
    report = layout.report_md.read_text()
    for row in (r"\| base[^|]* \| held-out \|", r"\| residual \| held-out \|", r"\| residual over ROS 2 \|"):
        assert re.search(row, report), row
    video = next(layout.eval_videos("residual").glob("*.mp4"))
    frame = iio.imread(video, index=0)
    assert frame.shape[1] == 3 * frame.shape[0]  # the scene, then the front and the wrist camera, side by side


@pytest.mark.slow
def test_no_object_state_reaches_the_deployed_policy(vision_run):
    """The base's obs keys, the refined actor's inputs (saved in refined.yaml) and what the ROS 2 policy node
    subscribes to and feeds its policy hold proprioception and camera frames only, though the observation
    topic carries the simulator's object state."""
    from rclpy.parameter import Parameter
    from ros.ros_helpers import Client, fresh_domain

    from robolearn.policy_factory import load_policy
    from robolearn.refine.residual import BASE_KEYS
    from robolearn.refine.saved import read_refined
    from robolearn.ros_nodes.convert import image_msg, observation_msg
    from robolearn.ros_nodes.policy_node import PolicyNode
    from robolearn.sim.registry import gym_make

    cfg, _ = vision_run
    layout = cfg.layout
    base = load_policy(layout.base, cfg.env_id)
    assert set(CAMERAS) <= set(base.shapes) and not _privileged(cfg, base.shapes)
    actor_inputs = set(read_refined(layout.branch_policy("residual")).obs_shapes) - set(BASE_KEYS)
    assert not _privileged(cfg, actor_inputs)  # the cameras reach it as the base's features (params.images)
    assert actor_inputs == set(cfg.train.policy.obs_keys) - set(CAMERAS)

    env = gym_make(cfg.env_id)
    obs, _ = env.reset(seed=0)
    env.close()
    assert _privileged(cfg, obs)  # the observation topic does carry object state
    client = Client(fresh_domain())
    node = PolicyNode(context=client.context, parameter_overrides=[
        Parameter("env_id", value=cfg.env_id), Parameter("policy", value=str(layout.branch_policy("residual"))),
        Parameter("inference", value="thread"), Parameter("wait_for_listener", value=False),
        Parameter("gc_freeze", value=False)])
    client.executor.add_node(node)
    fed: list[dict] = []
    push = node.runner.push
    node.runner.push = lambda o, meta, wake=True: (fed.append(dict(o)), push(o, meta, wake))[1]
    try:
        topics = {name for name, _ in node.get_topic_names_and_types()}
        assert {"/image/front", "/image/wrist"} <= topics
        assert not _privileged(cfg, node.input_keys) and node.cameras.keys == CAMERAS
        frame = np.zeros((64, 64, 3), np.uint8)
        for camera in ("front", "wrist"):
            node.cameras.add(camera, image_msg(frame, 5.0, camera))
        node.on_obs(observation_msg(obs, 5.0, 0, 0))
        assert client.spin_until(lambda: bool(fed), 5.0)
        assert set(fed[0]) == set(cfg.train.policy.obs_keys) and not _privileged(cfg, fed[0])
    finally:
        node.close()
        node.destroy_node()
        client.close()
