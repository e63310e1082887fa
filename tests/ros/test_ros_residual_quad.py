"""A residual-over-diffusion QuadHover policy through the real graph (sim_robot, policy, safety on loopback): the
twin's observations are the task's, and the policy node computes, step by step, exactly the actions the same
policy directory computes in this process from those observations (issue #24: whether the ROS path changes what
the residual sees)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))
from policy_helpers import small_config  # noqa: E402

from robolearn.policies import checkpoint  # noqa: E402
from robolearn.policy_factory import load_policy  # noqa: E402
from robolearn.refine.residual import BASE_KEY  # noqa: E402
from robolearn.refine.saved import save_refined  # noqa: E402
from robolearn.rl.networks import Actor  # noqa: E402
from robolearn.ros_nodes.convert import parse_observation, parse_tagged_action  # noqa: E402
from robolearn.ros_nodes.launcher import DeployConfig, Graph  # noqa: E402
from robolearn.sim.registry import gym_make  # noqa: E402

QUAD = "robolearn/QuadHover-v0"
SEED = 7
EPISODES = 2


def residual_dir(tmp_path: Path) -> Path:
    """A refined residual over a small untrained diffusion base (Ta = 4, two observation steps) whose chunks stay
    near hover (its action statistics span hover thrust +-0.02 N and +-0.3 rad/s), and an actor far from zero."""
    env = gym_make(QUAD)
    shapes = {k: list(s.shape) for k, s in env.observation_space.spaces.items()}
    cfg = dataclasses.replace(small_config("diffusion", "mlp"), obs_shapes=shapes, action_dim=4)
    base = checkpoint.make_policy(cfg).eval()
    near = {"min": np.array([0.245, -0.3, -0.3, -0.3]), "max": np.array([0.285, 0.3, 0.3, 0.3]),
            "mean": np.zeros(4), "std": np.ones(4)}
    state = {k: {"min": -np.ones(s), "max": np.ones(s), "mean": np.zeros(s), "std": np.ones(s)}
             for k, s in shapes.items()}
    base.set_stats(state | {"action": near})
    base_dir = checkpoint.save(base, tmp_path / "base")
    torch.manual_seed(3)
    actor_shapes = {k: tuple(s) for k, s in shapes.items()} | {BASE_KEY: (4,)}
    actor = Actor(actor_shapes, 4, [32], stochastic=False).eval()
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(0.3 * torch.randn_like(p))
    params = {"scale": 0.02, "base_noise": "zero"}  # deterministic: each episode replays on its own
    return save_refined(tmp_path / "refined", "residual", str(base_dir), QUAD, actor, actor_shapes, [32], params)


def record(cfg: DeployConfig, timeout: float) -> tuple[dict, dict, list]:
    """Run the graph with a client recording ``observation`` and ``action`` by (episode, step); returns them and
    the twin's episode reports."""
    import json

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Float64MultiArray, String

    from robolearn.ros_nodes.rosenv import use_ros_env

    graph = Graph(cfg)
    use_ros_env(graph.domain, True)
    context = Context()
    rclpy.init(context=context, domain_id=graph.domain)
    node = rclpy.create_node("residual_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    obs, acts, episodes = {}, {}, []

    def key(meta: dict) -> tuple[int, int]:
        return int(meta["episode"]), int(meta["step"])

    def on_obs(msg):
        o, meta = parse_observation(msg)
        obs[key(meta)] = o

    def on_action(msg):
        a, meta = parse_tagged_action(msg)
        acts[key(meta)] = a

    node.create_subscription(Float64MultiArray, "observation", on_obs,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
    node.create_subscription(Float64MultiArray, "action", on_action, QoSProfile(depth=100))
    node.create_subscription(String, "episode", lambda m: episodes.append(json.loads(m.data)), QoSProfile(depth=50))
    graph.start()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end and not any(e.get("done") for e in episodes):
            executor.spin_once(timeout_sec=0.02)
            assert all(p.poll() is None for p in graph.procs.values()), "a node exited"
    finally:
        graph.stop()
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    return obs, acts, [e for e in episodes if "success" in e]


@pytest.mark.slow
def test_residual_over_ros_computes_what_it_computes_in_simulation(tmp_path):
    policy_dir = residual_dir(tmp_path)
    cfg = DeployConfig(env_id=QUAD, domain_id=None, log_dir=str(tmp_path / "logs"),
                       params={"sim_robot": {"episodes": EPISODES, "seed": SEED, "step_hz": 50.0,
                                             "wait_for_subscribers": 2},  # the policy and this test's client
                               "policy": {"policy": str(policy_dir), "control_hz": 50.0, "device": "cpu"},
                               "safety": {"limits.watchdog_timeout": 0.5}})
    obs, acts, episodes = record(cfg, timeout=50.0)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((tmp_path / "logs").glob("*.log")))
    assert len(episodes) == EPISODES, f"{episodes}\n{logs}"
    env = gym_make(QUAD)
    policy = load_policy(policy_dir, QUAD, device="cpu")
    compared = 0
    for ep in range(EPISODES):
        first, _ = env.reset(seed=SEED + ep)
        for k, v in first.items():  # the twin's first observation is the task's, bit for bit
            np.testing.assert_array_equal(obs[(ep, 0)][k], v, err_msg=f"episode {ep} reset {k}")
        steps = sorted(s for e, s in acts if e == ep)
        if not steps or steps[0] != 0:
            continue  # this client matched the action topic after the episode started (discovery)
        policy.reset()
        for s in steps:  # the steps the node acted on, in order (one it skipped under load is skipped here too)
            expected = np.asarray(policy.act({k: v[None] for k, v in obs[(ep, s)].items()}))[0, 0]
            np.testing.assert_allclose(acts[(ep, s)], expected, rtol=0, atol=1e-5,
                                       err_msg=f"episode {ep} step {s}: ROS action differs from direct act")
            compared += 1
    assert compared >= 50, f"only {compared} steps compared\n{logs}"
