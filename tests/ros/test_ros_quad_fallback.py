"""The quadrotor's safety fallback in the MuJoCo QuadHover task: a tumble trip mid-manoeuvre stops the vehicle
where it is instead of letting it coast out of the arena (the residual's crashes over ROS 2, issue #24)."""

from __future__ import annotations

import mujoco
import numpy as np

from robolearn.ros_nodes.embodiments.quadrotor import QUAD_TUMBLE_TILT, Quadrotor, hover_or_land, tilt_of
from robolearn.ros_nodes.safety import Command
from robolearn.sim.registry import gym_make

QUAD = "robolearn/QuadHover-v0"
TRIPPED = {  # a refined residual's state over ROS 2 when the 1.2 rad tilt trip fired (seed 100004, step 31)
    "position": [-1.4829, -0.1049, 0.7983], "attitude": [0.8064, 0.0965, 0.5658, -0.1419],
    "velocity": [-0.1693, -1.9611, 0.0279], "body_rates": [-1.3749, 1.3809, 2.1643],
}


def test_hover_fallback_stops_a_vehicle_tripped_mid_manoeuvre_inside_the_arena():
    """Levelling alone (the old fallback) kept the trip's 2 m/s and the thrust of the tilted vehicle pushed it to
    3.9 m/s: it left the 5 m arena 89 steps after the trip (a crash). The fallback now brakes the horizontal
    velocity: within the 2 s hover the vehicle is nearly at rest, well inside the arena, near its altitude."""
    quad = Quadrotor()
    adapter = quad.make_adapter(QUAD)
    env = gym_make(QUAD).unwrapped
    env.reset(seed=0)
    quat = np.asarray(TRIPPED["attitude"]) / np.linalg.norm(TRIPPED["attitude"])
    assert tilt_of(quat) > QUAD_TUMBLE_TILT
    env.reset_vehicle(np.random.default_rng(0), np.asarray(TRIPPED["position"]), quat,
                      vel=np.asarray(TRIPPED["velocity"]))
    env.data.qvel[3:6] = TRIPPED["body_rates"]
    mujoco.mj_forward(env.model, env.data)
    obs = env._observe()
    for _ in range(100):  # hover_seconds = 2 s at 50 Hz
        cmd = hover_or_land(obs["attitude"].astype(float), obs["position"].astype(float),
                            obs["velocity"].astype(float), adapter.hover_thrust, land=False)
        quad.apply(env, adapter, Command(0.0, cmd))
        env.physics_step()
        obs, _, terminated, _, _ = env.post_step()
        assert not terminated, f"crashed on the fallback at {obs['position']}"
    assert np.linalg.norm(obs["velocity"]) < 0.6, obs["velocity"]
    assert np.abs(obs["position"][:2]).max() < 3.0 and 0.4 < obs["position"][2] < 1.3, obs["position"]


def test_hover_fallback_at_rest_commands_level_hover():
    """A level vehicle at rest gets zero rates and the hover thrust; one at rest but drifting gets a tilt against
    its velocity, never more than the braking bound."""
    level = hover_or_land(np.array([1.0, 0, 0, 0]), np.array([0, 0, 1.0]), np.zeros(3), 0.44, land=False)
    np.testing.assert_allclose(level, [0.0, 0.0, 0.0, 0.44], atol=1e-9)
    drifting = hover_or_land(np.array([1.0, 0, 0, 0]), np.array([0, 0, 1.0]), np.array([2.0, 0, 0]), 0.44, land=False)
    assert drifting[1] < 0.0 and drifting[0] == 0.0  # pitch back (about body y, FLU) against +x motion
