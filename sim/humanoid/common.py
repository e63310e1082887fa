"""Small pieces shared by the humanoid tasks: config merging and joint index tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import mujoco
import numpy as np

from robolearn.core.config import from_dict, to_dict

C = TypeVar("C")


def make_config(cls: type[C], config: C | dict[str, Any] | None, overrides: dict[str, Any], where: str) -> C:
    """``config`` (a ``cls``, a dict or None) with keyword ``overrides`` on top; unknown keys raise by name."""
    cfg = config if isinstance(config, cls) else from_dict(cls, dict(config or {}), where)
    if overrides:
        cfg = from_dict(cls, {**to_dict(cfg), **overrides}, f"{where} kwargs")
    return cfg


@dataclass(frozen=True)
class JointIndex:
    """Addresses of a list of hinge joints in a compiled model: qpos (n,), dof (n,), actuator (n,)."""

    names: tuple[str, ...]
    qpos: np.ndarray
    dof: np.ndarray
    act: np.ndarray
    low: np.ndarray
    """Joint range lower bounds (n,) rad."""
    high: np.ndarray

    @classmethod
    def of(cls, model: mujoco.MjModel, names: tuple[str, ...]) -> JointIndex:
        ids = [model.joint(n).id for n in names]
        act = []
        for n, j in zip(names, ids, strict=True):
            hits = np.flatnonzero((model.actuator_trnid[:, 0] == j) & (model.actuator_trntype == 0))
            if len(hits) != 1:
                raise ValueError(f"joint '{n}' has {len(hits)} joint actuators, expected 1")
            act.append(int(hits[0]))
        return cls(
            names=tuple(names),
            qpos=np.array([model.jnt_qposadr[j] for j in ids]),
            dof=np.array([model.jnt_dofadr[j] for j in ids]),
            act=np.array(act),
            low=model.jnt_range[ids, 0].copy(),
            high=model.jnt_range[ids, 1].copy(),
        )


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion wxyz (4,)."""
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, np.float64))
    return mat.reshape(3, 3)


def yaw_of_quat(quat: np.ndarray) -> float:
    """Heading (rad) of a quaternion wxyz: the angle of its rotated x axis in the world xy plane."""
    w, x, y, z = (float(v) for v in quat)
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion wxyz (4,) of a rotation by ``yaw`` (rad) about world z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
