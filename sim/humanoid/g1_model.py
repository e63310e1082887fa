"""A simplified Unitree G1 humanoid, written for robolearn with :class:`mujoco.MjSpec` (no copied files).

Primitive capsules and boxes sized from Unitree's published G1 figures (unitree.com/g1, "specifications"):

* standing height about 1.32 m, width 0.45 m, mass about 35 kg (this model: 1.32 m, 34.6 kg);
* thigh + calf length 0.6 m (0.30 m each here); arm length about 0.45 m (shoulder to palm centre 0.46 m);
* 29 joints (6 per leg, 3 waist, 7 per arm) with Unitree's joint names and published ranges: hip pitch
  -154..154 deg, hip roll -30..170 deg (mirrored on the right), hip yaw -158..158 deg, knee 0..165 deg,
  ankle pitch -50..30 deg, ankle roll -15..15 deg, waist yaw -155..155 deg, waist roll/pitch -30..30 deg,
  shoulder pitch -177..153 deg, shoulder roll -91..129 deg (mirrored), shoulder yaw -150..150 deg,
  elbow -60..120 deg, wrist roll -113..113 deg, wrist pitch/yaw -92..92 deg;
* joint torque limits: knee 120 N m (G1 EDU figure), hips and waist yaw 88 N m, ankles and waist
  roll/pitch 50 N m, shoulders/elbows/wrist roll 25 N m, wrist pitch/yaw 5 N m (Unitree's motor classes).

Conventions follow Unitree's: at zero the legs are straight, the upper arms hang down and the forearms
point forward (elbow 0 = 90 deg flexed, +1.57 rad = straight); knee positive = flexed; the pelvis is the
root. Every joint has a MuJoCo position actuator (PD in C at the physics rate) named after the joint, with
``ctrlrange`` = the joint range (rad) and ``forcerange`` = the torque limit (N m). The palms are thin boxes
(no fingers) with the sites ``left_palm`` / ``right_palm`` at their centres, on the inner (+/-y) faces.

Robot geoms collide with the world (floor, table, objects) but not with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robolearn.sim.pixels import set_render_defaults

DEG = np.pi / 180.0
LEG_JOINTS = ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll")
WAIST_JOINTS = ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint")
ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll", "wrist_pitch", "wrist_yaw")


def side_joints(side: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """``("left_hip_pitch_joint", ...)`` for ``side`` in ``left``/``right``."""
    return tuple(f"{side}_{n}_joint" for n in names)


LEFT_LEG, RIGHT_LEG = side_joints("left", LEG_JOINTS), side_joints("right", LEG_JOINTS)
LEFT_ARM, RIGHT_ARM = side_joints("left", ARM_JOINTS), side_joints("right", ARM_JOINTS)
ALL_JOINTS: tuple[str, ...] = (*LEFT_LEG, *RIGHT_LEG, *WAIST_JOINTS, *LEFT_ARM, *RIGHT_ARM)
"""The 29 actuated joints, in Unitree's order (legs, waist, arms)."""

STAND_QPOS = {
    "hip_pitch": -0.15, "knee": 0.30, "ankle_pitch": -0.15,
    "shoulder_pitch": 0.20, "shoulder_roll": 0.0, "elbow": 1.0,
}
"""Per-joint-kind standing posture (rad): slightly flexed knees, arms relaxed. Missing kinds are 0."""


@dataclass(frozen=True)
class JointSpec:
    """Axis, range (rad), torque limit (N m), PD gains (N m/rad, N m s/rad), armature (kg m^2)."""

    axis: tuple[float, float, float]
    range: tuple[float, float]
    torque: float
    kp: float
    kv: float
    armature: float = 0.01


X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
JOINTS: dict[str, JointSpec] = {
    "hip_pitch": JointSpec(Y, (-154 * DEG, 154 * DEG), 88.0, 300.0, 6.0, 0.01),
    "hip_roll": JointSpec(X, (-30 * DEG, 170 * DEG), 88.0, 300.0, 6.0, 0.025),
    "hip_yaw": JointSpec(Z, (-158 * DEG, 158 * DEG), 88.0, 100.0, 3.0, 0.01),
    "knee": JointSpec(Y, (0.0, 165 * DEG), 120.0, 400.0, 8.0, 0.025),
    "ankle_pitch": JointSpec(Y, (-50 * DEG, 30 * DEG), 50.0, 300.0, 6.0, 0.007),
    "ankle_roll": JointSpec(X, (-15 * DEG, 15 * DEG), 50.0, 200.0, 5.0, 0.007),
    "waist_yaw": JointSpec(Z, (-155 * DEG, 155 * DEG), 88.0, 150.0, 4.0, 0.01),
    "waist_roll": JointSpec(X, (-30 * DEG, 30 * DEG), 50.0, 150.0, 4.0, 0.007),
    "waist_pitch": JointSpec(Y, (-30 * DEG, 30 * DEG), 50.0, 150.0, 4.0, 0.007),
    "shoulder_pitch": JointSpec(Y, (-177 * DEG, 153 * DEG), 25.0, 80.0, 2.0, 0.004),
    "shoulder_roll": JointSpec(X, (-91 * DEG, 129 * DEG), 25.0, 80.0, 2.0, 0.004),
    "shoulder_yaw": JointSpec(Z, (-150 * DEG, 150 * DEG), 25.0, 60.0, 1.5, 0.004),
    "elbow": JointSpec(Y, (-60 * DEG, 120 * DEG), 25.0, 60.0, 1.5, 0.004),
    "wrist_roll": JointSpec(X, (-113 * DEG, 113 * DEG), 25.0, 30.0, 0.8, 0.002),
    "wrist_pitch": JointSpec(Y, (-92 * DEG, 92 * DEG), 5.0, 20.0, 0.5, 0.002),
    "wrist_yaw": JointSpec(Z, (-92 * DEG, 92 * DEG), 5.0, 20.0, 0.5, 0.002),
}
"""Per joint kind; roll joints of the right side are mirrored (range negated)."""

PELVIS_HEIGHT = 0.73
"""Pelvis origin height (m) with straight legs and flat feet on the floor."""
TOTAL_MASS = 34.6
"""Sum of the link masses below (kg)."""
ROBOT_CONTYPE, ROBOT_CONAFFINITY = 2, 1
"""Robot geoms: collide with world geoms (contype 1) but not with each other."""


def joint_kind(name: str) -> str:
    """``left_hip_pitch_joint`` -> ``hip_pitch``; ``waist_yaw_joint`` -> ``waist_yaw``."""
    base = name.removesuffix("_joint")
    for prefix in ("left_", "right_"):
        base = base.removeprefix(prefix)
    if base not in JOINTS:
        raise KeyError(f"unknown G1 joint '{name}'")
    return base


def joint_range(name: str) -> tuple[float, float]:
    """Range (rad) of a joint, mirrored for right-side roll/yaw joints where asymmetric."""
    lo, hi = JOINTS[joint_kind(name)].range
    if name.startswith("right_") and joint_kind(name) in ("hip_roll", "shoulder_roll"):
        return -hi, -lo
    return lo, hi


def stand_qpos() -> np.ndarray:
    """The standing posture (29,) rad, in :data:`ALL_JOINTS` order."""
    q = np.array([STAND_QPOS.get(joint_kind(j), 0.0) for j in ALL_JOINTS])
    for i, name in enumerate(ALL_JOINTS):  # mirror the roll joints' sign convention
        if name.startswith("right_") and joint_kind(name) in ("hip_roll", "shoulder_roll"):
            q[i] = -q[i]
    return q


def _geom(body: mujoco.MjsBody, kind: str, size, pos=(0, 0, 0), mass: float = 0.0, rgba=None,
          fromto=None, name: str = "") -> mujoco.MjsGeom:
    g = body.add_geom(name=name, type=getattr(mujoco.mjtGeom, f"mjGEOM_{kind.upper()}"), size=list(size) + [0] * (
        3 - len(size)), pos=list(pos), mass=mass, rgba=list(rgba or [0.7, 0.7, 0.75, 1]))
    if fromto is not None:
        g.fromto = list(fromto)
    g.contype, g.conaffinity = ROBOT_CONTYPE, ROBOT_CONAFFINITY
    g.friction = [1.0, 0.02, 0.001]
    return g


def _joint(body: mujoco.MjsBody, name: str) -> None:
    js = JOINTS[joint_kind(name)]
    body.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_HINGE, axis=list(js.axis), range=list(joint_range(name)),
                   limited=mujoco.mjtLimited.mjLIMITED_TRUE, armature=js.armature, damping=0.1, frictionloss=0.05)


def _leg(pelvis: mujoco.MjsBody, side: str) -> None:
    s = 1.0 if side == "left" else -1.0
    dark = [0.25, 0.25, 0.3, 1]
    b = pelvis.add_body(name=f"{side}_hip_pitch_link", pos=[0, s * 0.09, -0.08])
    _joint(b, f"{side}_hip_pitch_joint")
    _geom(b, "capsule", [0.04], mass=1.3, fromto=[0, 0, 0, 0, s * 0.03, 0], rgba=dark)
    b = b.add_body(name=f"{side}_hip_roll_link", pos=[0, s * 0.03, 0])
    _joint(b, f"{side}_hip_roll_joint")
    _geom(b, "capsule", [0.045], mass=1.5, fromto=[0, 0, 0, 0, 0, -0.05], rgba=dark)
    b = b.add_body(name=f"{side}_hip_yaw_link", pos=[0, 0, -0.05])
    _joint(b, f"{side}_hip_yaw_joint")
    _geom(b, "capsule", [0.045], mass=1.7, fromto=[0, 0, -0.02, 0, 0, -0.22])
    b = b.add_body(name=f"{side}_knee_link", pos=[0, 0, -0.25])
    _joint(b, f"{side}_knee_joint")
    _geom(b, "capsule", [0.04], mass=1.9, fromto=[0, 0, -0.02, 0, 0, -0.27])
    b = b.add_body(name=f"{side}_ankle_pitch_link", pos=[0, 0, -0.30])
    _joint(b, f"{side}_ankle_pitch_joint")
    _geom(b, "sphere", [0.025], mass=0.1, rgba=dark)
    b = b.add_body(name=f"{side}_ankle_roll_link", pos=[0, 0, 0])
    _joint(b, f"{side}_ankle_roll_joint")
    _geom(b, "box", [0.10, 0.035, 0.015], pos=[0.02, 0, -0.035], mass=0.6, rgba=dark, name=f"{side}_foot")
    b.add_site(name=f"{side}_sole", pos=[0.02, 0, -0.05])


def _arm(torso: mujoco.MjsBody, side: str) -> None:
    s = 1.0 if side == "left" else -1.0
    b = torso.add_body(name=f"{side}_shoulder_pitch_link", pos=[0, s * 0.10, 0.25])
    _joint(b, f"{side}_shoulder_pitch_joint")
    _geom(b, "capsule", [0.035], mass=0.7, fromto=[0, 0, 0, 0, s * 0.05, 0])
    b = b.add_body(name=f"{side}_shoulder_roll_link", pos=[0, s * 0.05, 0])
    _joint(b, f"{side}_shoulder_roll_joint")
    _geom(b, "capsule", [0.035], mass=0.65, fromto=[0, 0, 0, 0, 0, -0.1])
    b = b.add_body(name=f"{side}_shoulder_yaw_link", pos=[0, 0, -0.1])
    _joint(b, f"{side}_shoulder_yaw_joint")
    _geom(b, "capsule", [0.032], mass=0.75, fromto=[0, 0, 0, 0, 0, -0.1])
    b = b.add_body(name=f"{side}_elbow_link", pos=[0, 0, -0.1])
    _joint(b, f"{side}_elbow_joint")
    _geom(b, "capsule", [0.03], mass=0.6, fromto=[0, 0, 0, 0.12, 0, 0])
    b = b.add_body(name=f"{side}_wrist_roll_link", pos=[0.12, 0, 0])
    _joint(b, f"{side}_wrist_roll_joint")
    _geom(b, "capsule", [0.028], mass=0.1, fromto=[0, 0, 0, 0.04, 0, 0])
    b = b.add_body(name=f"{side}_wrist_pitch_link", pos=[0.04, 0, 0])
    _joint(b, f"{side}_wrist_pitch_joint")
    _geom(b, "capsule", [0.028], mass=0.45, fromto=[0, 0, 0, 0.04, 0, 0])
    b = b.add_body(name=f"{side}_wrist_yaw_link", pos=[0.04, 0, 0])
    _joint(b, f"{side}_wrist_yaw_joint")
    # The palm: a 12 x 2 x 9 cm pad whose inner face (towards the body's midline) is the contact surface.
    # Offset towards the midline so that its inner face (3.5 cm off the wrist axis) is proud of the capsules.
    pad = _geom(b, "box", [0.06, 0.01, 0.045], pos=[0.06, -s * 0.025, 0], mass=0.3, rgba=[0.2, 0.2, 0.22, 1],
                name=f"{side}_palm")
    pad.friction = [1.5, 0.02, 0.001]
    b.add_site(name=f"{side}_palm", pos=[0.06, -s * 0.035, 0], size=[0.01, 0, 0])


def build_g1(spec: mujoco.MjSpec, floating: bool, pelvis_pos: tuple[float, float, float] | None = None,
             arm_gravcomp: bool = False) -> mujoco.MjsBody:
    """Add the G1 to ``spec``'s world body; return the pelvis body.

    ``floating``: a free joint ``floating_base_joint`` on the pelvis; otherwise the pelvis is welded to the
    world at ``pelvis_pos`` (m). ``arm_gravcomp``: MuJoCo gravity compensation on the arm links (the
    fixed-base manipulation task; never with a floating base, where it would lighten the robot).
    """
    spec.compiler.degree = False  # every angle here is in radians
    pos = list(pelvis_pos or (0.0, 0.0, PELVIS_HEIGHT))
    pelvis = spec.worldbody.add_body(name="pelvis", pos=pos)
    if floating:
        pelvis.add_freejoint(name="floating_base_joint")
    _geom(pelvis, "box", [0.06, 0.10, 0.05], mass=4.0, rgba=[0.25, 0.25, 0.3, 1])
    pelvis.add_site(name="imu", pos=[0, 0, 0])
    for side in ("left", "right"):
        _leg(pelvis, side)
    b = pelvis.add_body(name="waist_yaw_link", pos=[0, 0, 0])
    _joint(b, "waist_yaw_joint")
    _geom(b, "sphere", [0.03], mass=0.2)
    b = b.add_body(name="waist_roll_link", pos=[0, 0, 0.04])
    _joint(b, "waist_roll_joint")
    _geom(b, "sphere", [0.03], mass=0.1)
    torso = b.add_body(name="torso_link", pos=[0, 0, 0])
    _joint(torso, "waist_pitch_joint")
    _geom(torso, "box", [0.08, 0.11, 0.14], pos=[0, 0, 0.17], mass=8.0, rgba=[0.8, 0.8, 0.85, 1])
    _geom(torso, "sphere", [0.09], pos=[0, 0, 0.46], mass=1.0, rgba=[0.15, 0.15, 0.18, 1], name="head")
    torso.add_camera(name="head", pos=[0.08, 0, 0.46], xyaxes=[0, -1, 0, 0.5, 0, 0.866], fovy=80)
    for side in ("left", "right"):
        _arm(torso, side)
    if arm_gravcomp:
        for side in ("left", "right"):
            for link in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll", "wrist_pitch",
                         "wrist_yaw"):
                spec.body(f"{side}_{link}_link").gravcomp = 1.0
    for name in ALL_JOINTS:
        js = JOINTS[joint_kind(name)]
        act = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=js.kp, kv=js.kv)
        act.ctrlrange = list(joint_range(name))
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-js.torque, js.torque]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return pelvis


def add_ground(spec: mujoco.MjSpec, size: float = 4.0) -> None:
    """A checkered floor (the plane z=0, contype 1), lights, and offscreen-buffer settings."""
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    set_render_defaults(spec)
    tex = spec.add_texture(name="floor_tex", type=mujoco.mjtTexture.mjTEXTURE_2D,
                           builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256,
                           rgb1=[0.35, 0.4, 0.45], rgb2=[0.3, 0.35, 0.4])
    spec.add_material(name="floor_mat", textures=["", tex.name], texrepeat=[8, 8], reflectance=0.0)
    floor = spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[size, size, 0.05],
                                    material="floor_mat")
    floor.friction = [1.0, 0.02, 0.001]
    spec.worldbody.add_light(pos=[0, 0, 3.0], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8], castshadow=False)
