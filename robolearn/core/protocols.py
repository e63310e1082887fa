"""The small interfaces every part of robolearn meets at.

* :class:`Policy`: anything that maps observations to action chunks (scripted experts, BC, diffusion
  policies, refined policies). Refinement and deployment only ever see this protocol.
* :class:`Robot`: a simulated or real robot (``get_observation`` / ``send_action``).
* :class:`Teleop`: a human input device (``get_action`` returns a command, or None when the person is
  not intervening).

Observations are dicts of arrays with a leading batch dimension ``B``; actions are arrays in physical
units. Shapes use ``B`` (batch / number of envs), ``Ta`` (action steps executed per chunk) and ``Da``
(action dimension).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Obs = Mapping[str, np.ndarray]
"""A batched observation: each value has shape ``(B, *feature_shape)``."""


@runtime_checkable
class Policy(Protocol):
    """A policy producing action chunks.

    ``act(obs, noise)`` returns an array of shape ``(B, Ta, Da)`` in the env's physical action units.
    It is deterministic given ``noise``: a generative policy (diffusion) draws its initial noise from
    its own generator only when ``noise`` is None; a deterministic policy ignores ``noise``.

    A policy with an observation history may also have ``observe(obs)``: runners that execute a
    chunk open-loop call it with each intermediate observation, so the history holds consecutive
    steps (``act`` itself records the observation it is given).
    """

    @property
    def noise_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample's initial noise, e.g. ``(Tp, Da)``; None for non-generative policies."""
        ...

    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        """Return an action chunk ``(B, Ta, Da)`` for a batch of observations."""
        ...

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        """Forget per-episode state (history, queued actions) for ``env_ids`` (all when None)."""
        ...


@dataclass(frozen=True)
class Feature:
    """One named observation or action feature: its shape, dtype and physical units."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    units: str = ""
    names: tuple[str, ...] = ()
    """Optional per-element names (joint names, axis labels), ``len == prod(shape)`` when given."""

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "units": self.units, "names": list(self.names)}


@dataclass
class RobotInfo:
    """What a robot exposes: its features and control rate."""

    name: str
    observation_features: dict[str, Feature] = field(default_factory=dict)
    action_features: dict[str, Feature] = field(default_factory=dict)
    control_hz: float = 20.0


@runtime_checkable
class Robot(Protocol):
    """A robot, simulated or real, driven one control step at a time (unbatched).

    The ROS 2 twin's physics (``robolearn.ros_nodes.sim_robot.SimRobot``) implements it; a real robot's driver
    takes the same shape. A real robot's clock runs by itself; a simulated one advances when stepped.
    """

    info: RobotInfo

    def get_observation(self) -> dict[str, np.ndarray]:
        """Latest observation, one array per ``info.observation_features`` key."""
        ...

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Command one action ``(Da,)``; returns the action actually sent (after clipping)."""
        ...


@runtime_checkable
class Teleop(Protocol):
    """A human input device mapped to the robot's action space."""

    def get_action(self) -> np.ndarray | None:
        """The operator's command ``(Da,)``, or None when the operator is not intervening."""
        ...
