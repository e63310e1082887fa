"""The explicit registry of robolearn tasks, and their registration with gymnasium.

Every task is one entry of :data:`TASKS`. Nothing registers on import: :func:`register_all` does it
explicitly (idempotent), :func:`gym_make` registers and then calls ``gymnasium.make``, and the plugin module
:mod:`robolearn.sim.envs` lets ``gymnasium.make("robolearn.sim.envs:robolearn/PandaLift-v0")`` work in a
fresh interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym


@dataclass(frozen=True)
class TaskSpec:
    """One registered task."""

    env_id: str
    entry_point: str
    """``module:Class`` of the gymnasium env."""
    expert: str
    """``module:Class`` of the scripted expert :class:`~robolearn.core.protocols.Policy`."""
    embodiment: str
    """``arm``, ``humanoid`` or ``quadrotor``."""
    max_episode_steps: int
    description: str
    vec_backend: str = "threads"
    """Default backend of :func:`robolearn.sim.vector.make_vec_env` for this task, ``threads`` or
    ``processes``: whichever ``bench/sim_throughput.py`` measures faster for it on the machine the project
    runs on (its ``faster here`` column). Threads win for every task on the shared 2-core machine, the
    quadrotor's included now that its rate loop holds the GIL for less of each physics step; worker
    processes only pay where cores sit idle for them."""


TASKS: dict[str, TaskSpec] = {
    spec.env_id: spec
    for spec in [
        TaskSpec(
            env_id="robolearn/PandaLift-v0",
            entry_point="robolearn.sim.arm.panda_lift:PandaLiftEnv",
            expert="robolearn.sim.arm.experts:LiftExpert",
            embodiment="arm",
            max_episode_steps=100,
            description="Franka Panda grasps a cube at a random pose and lifts it 10 cm.",
        ),
        TaskSpec(
            env_id="robolearn/PandaPegInsert-v0",
            entry_point="robolearn.sim.arm.panda_peg_insert:PandaPegInsertEnv",
            expert="robolearn.sim.arm.experts:PegInsertExpert",
            embodiment="arm",
            max_episode_steps=100,
            description="Franka Panda inserts a held square peg into a hole (2 mm clearance) at a random pose.",
        ),
        # ---- humanoid tasks (sim/humanoid/) ----
        TaskSpec(
            env_id="robolearn/G1BimanualLift-v0",
            entry_point="robolearn.sim.humanoid.bimanual_lift:G1BimanualLiftEnv",
            expert="robolearn.sim.humanoid.expert:G1BimanualLiftExpert",
            embodiment="humanoid",
            max_episode_steps=150,
            description="Unitree G1 (fixed pelvis) squeezes a box on a table between its palms and lifts it 10 cm.",
        ),
        TaskSpec(
            env_id="robolearn/G1PushRecovery-v0",
            entry_point="robolearn.sim.humanoid.push_recovery:G1PushRecoveryEnv",
            expert="robolearn.sim.humanoid.standing_controller:StandingController",
            embodiment="humanoid",
            max_episode_steps=250,
            description="Floating-base Unitree G1 stays upright for 5 s under random horizontal pushes on the torso.",
        ),
        # ---- quadrotor tasks (sim/quadrotor/) ----
        TaskSpec(
            env_id="robolearn/QuadHover-v0",
            entry_point="robolearn.sim.quadrotor.hover:QuadHoverEnv",
            expert="robolearn.sim.quadrotor.expert:HoverExpert",
            embodiment="quadrotor",
            max_episode_steps=400,
            description="Crazyflie 2.x reaches a random target and holds it within 10 cm for 1 s under wind gusts.",
        ),
        TaskSpec(
            env_id="robolearn/QuadGates-v0",
            entry_point="robolearn.sim.quadrotor.gates:QuadGatesEnv",
            expert="robolearn.sim.quadrotor.expert:GatesExpert",
            embodiment="quadrotor",
            max_episode_steps=1000,
            description="Crazyflie 2.x flies one lap through 6 gates as fast as it can; crash or missed gate fails.",
        ),
    ]
}


def register_all() -> None:
    """Register every task in :data:`TASKS` with gymnasium; a no-op for ids already registered."""
    for spec in TASKS.values():
        if spec.env_id in gym.registry:
            continue
        gym.register(
            id=spec.env_id,
            entry_point=spec.entry_point,
            max_episode_steps=spec.max_episode_steps,
            disable_env_checker=True,
        )


def gym_make(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)`` after registering robolearn's tasks."""
    register_all()
    return gym.make(env_id, **kwargs)


def task(env_id: str) -> TaskSpec:
    """The spec of ``env_id``; the error lists the registered ids."""
    try:
        return TASKS[env_id]
    except KeyError:
        raise KeyError(f"unknown env '{env_id}'; registered: {', '.join(TASKS)}") from None


def load_object(path: str):
    """Import ``module:attr``."""
    import importlib

    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)
