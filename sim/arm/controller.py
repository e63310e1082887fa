"""Differential inverse kinematics for end-effector delta commands.

Once per control step, a desired TCP displacement ``dx`` (m) and yaw change ``dyaw`` (rad) are turned
into joint position targets with damped least squares on the site Jacobian, keeping the gripper
pointing down, with a null-space pull towards a posture. MuJoCo's joint servos then track the targets
at the physics rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
"""TCP orientation with yaw 0: gripper z axis pointing down, x axis along world x."""


def yaw_of(xmat: np.ndarray) -> float:
    """Yaw (rad) of a downward-pointing frame, from its rotation matrix ``(3, 3)``."""
    return float(np.arctan2(xmat[1, 0], xmat[0, 0]))  # not math.atan2: it rounds differently


def down_rotation(yaw: float) -> np.ndarray:
    """Rotation ``(3, 3)`` of the downward TCP frame turned by ``yaw`` about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])  # Rz(yaw) @ DOWN, written out


def rotation_error(current: np.ndarray, desired: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Axis-angle vector ``(3,)`` (rad, world frame) rotating ``current`` onto ``desired`` (both ``(3, 3)``).

    ``out``: a contiguous ``(3,)`` float64 array to write into (a new one when None).
    """
    quat_err = np.empty(4)
    mujoco.mju_mat2Quat(quat_err, (desired @ current.T).ravel())
    vel = np.empty(3) if out is None else out
    mujoco.mju_quat2Vel(vel, quat_err, 1.0)
    return vel


def index_or_slice(ids: np.ndarray) -> np.ndarray | slice:
    """``slice(a, b)`` when ``ids`` are the consecutive integers ``a..b-1``, else ``ids``.

    A slice indexes a MuJoCo state array as a view, with none of the gather that an index array costs.
    """
    ids = np.asarray(ids)
    if ids.ndim == 1 and len(ids) > 0 and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        return slice(int(ids[0]), int(ids[0]) + len(ids))
    return ids


@dataclass
class DiffIKController:
    """Damped-least-squares IK from TCP deltas to joint targets for one arm.

    Args:
        model, data: the MuJoCo model and data.
        site: the TCP site name.
        dof_ids: the arm's velocity indices (7,).
        qpos_ids: the arm's position indices (7,).
        posture: null-space posture (7,) rad.
    """

    model: mujoco.MjModel
    data: mujoco.MjData
    site: str
    dof_ids: np.ndarray
    qpos_ids: np.ndarray
    posture: np.ndarray
    damping: float = 0.05
    posture_gain: float = 0.2
    max_joint_step: float = 0.25
    """Largest joint target change per control step (rad)."""

    def __post_init__(self) -> None:
        self._site_id = self.model.site(self.site).id
        self._jac = np.zeros((6, self.model.nv))
        self._jacp, self._jacr = self._jac[:3], self._jac[3:]  # views: mj_jacSite fills both halves
        self._damping_eye = (self.damping**2) * np.eye(6)
        self._x6 = np.zeros(6)
        self._err = np.zeros(6)
        self._jac_arm = np.zeros((6, len(self.dof_ids)), order="F")  # the layout jac[:, ids] had
        self._dofs, self._qpos_idx = index_or_slice(self.dof_ids), index_or_slice(self.qpos_ids)
        self._site_xpos = self.data.site_xpos[self._site_id]  # views into MjData, updated by each mj_step
        self._site_xmat = self.data.site_xmat[self._site_id].reshape(3, 3)
        low, high = self.model.jnt_range[self.model.dof_jntid[self.dof_ids]].T
        self._low, self._high = low + 0.02, high - 0.02

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) m and rotation (3, 3)."""
        return self.data.site_xpos[self._site_id].copy(), self.data.site_xmat[self._site_id].reshape(3, 3).copy()

    def solve(self, target_pos: np.ndarray, target_rot: np.ndarray) -> np.ndarray:
        """Joint targets (7,) rad moving the TCP towards ``target_pos`` (3,) m, ``target_rot`` (3, 3).

        ``dq = J+ err + (I - J+ J) k (posture - q)`` with the damped pseudo-inverse
        ``J+ = J^T (J J^T + d^2 I)^-1``, computed as ``dq = p + J^T (J J^T + d^2 I)^-1 (err - J p)``
        with ``p = k (posture - q)`` and one 6x6 Cholesky solve in MuJoCo's C (``mju_cholFactor``,
        ``mju_cholSolve``): this runs every control step, so it reads the TCP pose through views and
        writes into preallocated buffers rather than paying numpy's per-call overhead on fresh arrays.
        """
        err = self._err
        np.subtract(target_pos, self._site_xpos, out=err[:3])
        rotation_error(self._site_xmat, target_rot, out=err[3:])
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site_id)
        jac = self._jac_arm  # a buffer: BLAS rounds differently on other memory layouts
        np.copyto(jac, self._jac[:, self._dofs])
        q = self.data.qpos[self._qpos_idx]
        pull = self.posture_gain * (self.posture - q)
        jjt = jac @ jac.T + self._damping_eye
        mujoco.mju_cholFactor(jjt, 0.0)
        mujoco.mju_cholSolve(self._x6, jjt, err - jac @ pull)
        dq = pull + jac.T @ self._x6
        dq = np.minimum(np.maximum(dq, -self.max_joint_step), self.max_joint_step)
        return np.minimum(np.maximum(q + dq, self._low), self._high)

    def joint_targets_for_delta(self, dpos: np.ndarray, dyaw: float) -> np.ndarray:
        """Joint targets for a TCP displacement ``dpos`` (3,) m and a yaw change ``dyaw`` rad."""
        return self.solve(self._site_xpos + dpos, down_rotation(yaw_of(self._site_xmat) + dyaw))
