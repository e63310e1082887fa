"""Importing this module registers every robolearn task with gymnasium; that is its only job.

gymnasium 1.x loads plugins through the ``module:env_id`` form of an id, so in a fresh interpreter
``gymnasium.make("robolearn.sim.envs:robolearn/PandaLift-v0")`` works with nothing imported first.
(gymnasium 0.26-0.29 also read the ``gymnasium.envs`` entry point declared in pyproject.toml, which
calls :func:`robolearn.sim.registry.register_all` directly.) Nothing else in robolearn imports this
module: robolearn's own code calls :func:`robolearn.sim.registry.gym_make`, which registers explicitly.
"""

from robolearn.sim.registry import register_all

register_all()
