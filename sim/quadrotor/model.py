"""Our own MJCF of a Crazyflie 2.x-class nano quadrotor, built with :class:`mujoco.MjSpec`.

No model file is copied: the body is a rigid frame with explicit inertia, four thrust actuators on
sites at the rotor hubs and visual-only geometry. The physical figures are published ones:

* mass 0.027 kg, arm length (centre to rotor hub) 0.0397 m, rotor thrust constant
  ``kF = 3.16e-10 N/rpm^2``: C. Luis and J. Le Ny, "Design of a Trajectory Tracking Controller for a
  Nanoquadcopter", Polytechnique Montreal tech. report, 2016, arXiv:1608.05786;
* inertia: the diagonal of the identified tensor, ``Ixx = 16.571710e-6``, ``Iyy = 16.655602e-6``,
  ``Izz = 29.261652e-6 kg m^2`` (off-diagonal terms, below 7 % of the diagonal, are dropped); rotor
  reaction torque per unit thrust ``0.005964552 m``; rotor drag coefficients ``9.1785e-7`` (x, y) and
  ``10.311e-7`` (z) N s/m per rad/s of summed rotor speed: J. Foerster, "System Identification of the
  Crazyflie 2.0 Nano Quadrocopter", bachelor thesis, ETH Zurich, 2015;
* thrust-to-weight ratio 2.25 and propeller radius 0.0231348 m: the ``cf2x`` parameters of
  gym-pybullet-drones (Panerati et al., IROS 2021), which cite the two sources above.

The motor time constant (0.03 s) is *our assumption* for a brushed 7 mm motor, not a published figure;
it is a field of :class:`QuadrotorParams` so that it can be set or randomized.

Frames: world z up; body x forward, y left, z up (thrust axis). Rotors in X configuration at azimuths
-45 deg (front-right), -135 deg (back-right), 135 deg (back-left), 45 deg (front-left), with
alternating spin: the reaction torque of rotor ``i`` about body z is ``YAW_SIGN[i] * c_tau * f_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robolearn.sim.pixels import set_render_defaults

GRAVITY = 9.81
"""m/s^2."""
ROTOR_AZIMUTH = np.deg2rad([-45.0, -135.0, 135.0, 45.0])
"""Azimuth of each rotor hub in the body frame (rad)."""
YAW_SIGN = np.array([-1.0, 1.0, -1.0, 1.0])
"""Sign of each rotor's reaction torque about body z (alternating spin directions)."""
BODY = "quad"
MOTOR_SITES = tuple(f"rotor{i}" for i in range(4))
MOTORS = tuple(f"motor{i}" for i in range(4))


@dataclass(frozen=True)
class QuadrotorParams:
    """Published physical figures of the Crazyflie 2.x (sources in the module docstring)."""

    mass: float = 0.027
    """Total mass (kg)."""
    arm_length: float = 0.0397
    """Distance from the centre of mass to each rotor hub (m)."""
    inertia: tuple[float, float, float] = (16.571710e-6, 16.655602e-6, 29.261652e-6)
    """Principal moments of inertia about body x, y, z (kg m^2)."""
    thrust_coeff_rpm: float = 3.16e-10
    """Rotor thrust per squared rotor speed (N / rpm^2)."""
    torque_ratio: float = 0.005964552
    """Rotor reaction torque per unit thrust (N m / N = m)."""
    thrust_to_weight: float = 2.25
    """Total maximum thrust over weight."""
    prop_radius: float = 0.0231348
    """Propeller radius (m), for the visuals and the collision box."""
    drag_coeff_xy: float = 9.1785e-7
    """Translational rotor drag in body x/y (N s/m per rad/s of summed rotor speed)."""
    drag_coeff_z: float = 10.311e-7
    """Translational rotor drag in body z (N s/m per rad/s of summed rotor speed)."""
    motor_tau: float = 0.03
    """First-order motor thrust time constant (s); an assumption, see the module docstring."""

    @property
    def max_motor_thrust(self) -> float:
        """Largest thrust of one rotor (N)."""
        return self.thrust_to_weight * self.mass * GRAVITY / 4.0

    @property
    def hover_thrust(self) -> float:
        """Collective thrust that balances gravity (N)."""
        return self.mass * GRAVITY

    def hover_rotor_speed(self) -> float:
        """Rotor speed at hover (rad/s), from ``f = kF * rpm^2``."""
        rpm = np.sqrt(self.hover_thrust / 4.0 / self.thrust_coeff_rpm)
        return float(rpm * 2.0 * np.pi / 60.0)

    def linear_drag(self) -> np.ndarray:
        """Lumped translational drag ``(3,)`` N/(m/s) (x, y, z) at hover rotor speed.

        Foerster's model is ``F = -K diag(kxy, kxy, kz) * sum_i(omega_i) * v``; linearised at the hover
        rotor speed it is about 5.6e-3 N per m/s horizontally for the nominal vehicle.
        """
        total = 4.0 * self.hover_rotor_speed()
        return np.array([self.drag_coeff_xy, self.drag_coeff_xy, self.drag_coeff_z]) * total

    def rotor_positions(self) -> np.ndarray:
        """Rotor hub positions in the body frame ``(4, 3)`` (m)."""
        c, s = np.cos(ROTOR_AZIMUTH), np.sin(ROTOR_AZIMUTH)
        return np.stack([self.arm_length * c, self.arm_length * s, np.zeros(4)], axis=1)

    def allocation(self) -> np.ndarray:
        """``(4, 4)`` matrix mapping rotor thrusts (N) to ``[T (N), tau_x, tau_y, tau_z (N m)]``."""
        pos = self.rotor_positions()
        return np.stack([np.ones(4), pos[:, 1], -pos[:, 0], YAW_SIGN * self.torque_ratio])


CRAZYFLIE = QuadrotorParams()


def add_quadrotor(spec: mujoco.MjSpec, params: QuadrotorParams = CRAZYFLIE, pos=(0.0, 0.0, 1.0)) -> None:
    """Add the quadrotor (free body ``quad``, motors ``motor0..3``, cameras ``front``/``track``)."""
    body = spec.worldbody.add_body(name=BODY, pos=list(pos))
    body.add_freejoint(name=BODY)
    body.explicitinertial = True
    body.ipos, body.iquat = [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]  # centre of mass at the body origin
    body.mass = params.mass
    body.inertia = list(params.inertia)
    vis = {"contype": 0, "conaffinity": 0, "density": 0.0, "group": 1}
    geom = mujoco.mjtGeom
    body.add_geom(name="hull", type=geom.mjGEOM_BOX, size=[0.016, 0.016, 0.005], rgba=[0.15, 0.15, 0.18, 1],
                  **vis)
    reach = params.arm_length + params.prop_radius
    # One collision box around the frame and rotor disks; it touches only the floor.
    body.add_geom(name="collision", type=geom.mjGEOM_BOX, size=[reach * 0.75, reach * 0.75, 0.012],
                  rgba=[0, 0, 0, 0], density=0.0, group=3)
    for i, hub in enumerate(params.rotor_positions()):
        body.add_geom(type=geom.mjGEOM_CAPSULE, fromto=[0, 0, 0, *hub], size=[0.003, 0, 0],
                      rgba=[0.2, 0.2, 0.22, 1], **vis)
        colour = [0.85, 0.2, 0.2, 0.6] if hub[0] > 0 else [0.2, 0.4, 0.85, 0.6]  # red at the front
        body.add_geom(type=geom.mjGEOM_CYLINDER, pos=[*hub[:2], 0.012], size=[params.prop_radius, 0.0008, 0],
                      rgba=colour, **vis)
        body.add_geom(type=geom.mjGEOM_CYLINDER, pos=[*hub[:2], 0.004], size=[0.0045, 0.008, 0],
                      rgba=[0.6, 0.6, 0.6, 1], **vis)
        body.add_site(name=MOTOR_SITES[i], pos=list(hub), size=[0.004, 0, 0], group=4)
    body.add_camera(name="front", pos=[0.02, 0, 0.01], xyaxes=[0, -1, 0, 0, 0, 1], fovy=90)
    # Follows the vehicle from 0.7 m away (x-y) and 0.4 m above (offset fixed at the compile-time pose).
    spec.worldbody.add_camera(name="track", pos=[pos[0] - 0.5, pos[1] - 0.5, pos[2] + 0.4],
                              xyaxes=[0.707, -0.707, 0, 0.348, 0.348, 0.870],
                              mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM, fovy=60)
    for i in range(4):
        act = spec.add_actuator(name=MOTORS[i], trntype=mujoco.mjtTrn.mjTRN_SITE, target=MOTOR_SITES[i])
        act.gear = [0, 0, 1, 0, 0, YAW_SIGN[i] * params.torque_ratio]
        act.dyntype = mujoco.mjtDyn.mjDYN_FILTEREXACT  # first-order motor lag: d(act)/dt = (ctrl - act)/tau
        act.dynprm[0] = params.motor_tau
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.gainprm[0] = 1.0  # thrust (N) = gain * act; the gain is the randomizable thrust constant scale
        act.biastype = mujoco.mjtBias.mjBIAS_NONE
        act.ctrllimited = True
        act.ctrlrange = [0.0, params.max_motor_thrust]


def build_arena(half_size: float = 5.0) -> mujoco.MjSpec:
    """An empty arena: a checkered floor (the plane z=0, ``half_size`` m each way) and lights."""
    spec = mujoco.MjSpec()
    set_render_defaults(spec)
    spec.visual.quality.offsamples = 2
    tex = spec.add_texture(
        name="floor_tex", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        width=256, height=256, rgb1=[0.45, 0.5, 0.45], rgb2=[0.38, 0.43, 0.38],
    )
    spec.add_material(name="floor_mat", textures=["", tex.name], texrepeat=[half_size, half_size])
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[half_size, half_size, 0.05],
                            material="floor_mat")
    spec.worldbody.add_light(pos=[0, 0, 6.0], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8], castshadow=False)
    spec.worldbody.add_camera(name="overview", pos=[0, -half_size * 1.3, half_size * 0.9],
                              xyaxes=[1, 0, 0, 0, 0.6, 0.8], fovy=60)
    return spec
