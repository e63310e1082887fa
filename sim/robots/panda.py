"""The Franka Emika Panda model: where it comes from, and how robolearn drives it.

The repository holds no copy of another project's model files. The Panda (with a Robotiq 2F-85
gripper) comes from MuJoCo Menagerie, obtained from one of two sources:

* ``gym_hil``: the ``gym-hil`` wheel on the package index ships Menagerie's Panda + 2F-85 (Apache-2.0).
  It works offline once installed (``pip install --no-deps gym-hil``; ``make`` does this).
* ``menagerie``: the ``mujoco-menagerie`` package downloads Menagerie's ``franka_emika_panda`` and
  ``robotiq_2f85`` on first use (needs internet), and the gripper is attached here.

Either way the model is normalised to the same interface: the seven torque motors become joint
position servos (PD, force-limited to the Panda's torque limits: 87 N m for joints 1-4, 12 N m for 5-7)
with gravity compensation on every robot body, so a controller at 20 Hz only sets joint targets and
MuJoCo tracks them at the physics rate; the gripper is one actuator with ``ctrl`` in ``[0, 255]``
(0 open, 255 closed); the tool-centre point is the site ``tcp`` between the fingertips.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
HOME_QPOS = np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785])
"""Home configuration (rad): gripper pointing down, TCP about 0.45 m in front of the base."""
KP = np.array([600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 60.0])
"""Joint servo stiffness (N m / rad)."""
KD = np.array([50.0, 50.0, 50.0, 50.0, 20.0, 15.0, 6.0])
"""Joint servo damping (N m s / rad)."""
TORQUE_LIMIT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
"""Panda joint torque limits (N m), from Franka's datasheet."""
GRIPPER_ACTUATOR = "gripper"
GRIPPER_JOINT = "right_driver_joint"
"""Driver joint of the 2F-85: 0 rad open, about 0.8 rad closed."""
TCP_SITE = "tcp"
SOURCES = ("auto", "gym_hil", "menagerie")


class RobotModelError(RuntimeError):
    """The robot model could not be found or loaded."""


@dataclass(frozen=True)
class ModelSource:
    """Where the Panda came from."""

    name: str
    path: Path


def _gym_hil_path() -> Path | None:
    spec = importlib.util.find_spec("gym_hil")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "panda.xml"
    return path if path.is_file() else None


def find_source(source: str = "auto") -> ModelSource:
    """Resolve ``source`` (``auto`` prefers the offline ``gym_hil`` wheel, then ``menagerie``)."""
    if source not in SOURCES:
        raise RobotModelError(f"unknown Panda model source '{source}'; choose from {SOURCES}")
    if source in ("auto", "gym_hil"):
        path = _gym_hil_path()
        if path is not None:
            return ModelSource("gym_hil", path)
        if source == "gym_hil":
            raise RobotModelError(
                "the Panda model source 'gym_hil' is not installed: run `pip install --no-deps gym-hil`"
            )
    if importlib.util.find_spec("mujoco_menagerie") is not None:
        import mujoco_menagerie

        try:
            path = Path(mujoco_menagerie.get("franka_emika_panda").path()) / "panda_nohand.xml"
        except Exception as err:  # network or cache failure inside the downloader
            raise RobotModelError(f"mujoco-menagerie could not provide the Panda: {err}") from err
        return ModelSource("menagerie", path)
    raise RobotModelError(
        "no Franka Panda model found. Install one source: `pip install --no-deps gym-hil` (offline "
        "wheel shipping MuJoCo Menagerie's Panda) or `pip install robolearn[menagerie]` (downloads "
        "Menagerie on first use)."
    )


def _menagerie_with_gripper(arm_path: Path) -> mujoco.MjSpec:
    """Menagerie's arm without hand + its Robotiq 2F-85, attached at the flange."""
    import mujoco_menagerie

    spec = mujoco.MjSpec.from_file(str(arm_path))
    gripper_dir = Path(mujoco_menagerie.get("robotiq_2f85").path())
    gripper = mujoco.MjSpec.from_file(str(gripper_dir / "2f85.xml"))
    flange = spec.body("link7").add_site(name="flange", pos=[0, 0, 0.107], quat=[0.9238795, 0, 0, -0.3826834])
    spec.attach(gripper, site=flange, prefix="")
    return spec


def _to_position_servos(spec: mujoco.MjSpec) -> None:
    """Turn every arm actuator into a force-limited joint PD servo; rename the gripper actuator."""
    arm = [a for a in spec.actuators if a.target in ARM_JOINTS]
    if len(arm) != 7:
        raise RobotModelError(f"expected 7 arm actuators on {ARM_JOINTS}, found {[a.target for a in arm]}")
    for act in arm:
        i = ARM_JOINTS.index(act.target)
        joint = spec.joint(act.target)
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[:3] = [KP[i], 0, 0]
        act.biasprm[:3] = [0, -KP[i], -KD[i]]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrlrange = joint.range
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-TORQUE_LIMIT[i], TORQUE_LIMIT[i]]
    others = [a for a in spec.actuators if a.target not in ARM_JOINTS]
    if len(others) != 1:
        raise RobotModelError(f"expected one gripper actuator, found {[a.name for a in others]}")
    others[0].name = GRIPPER_ACTUATOR


def load_panda_spec(source: str = "auto") -> tuple[mujoco.MjSpec, ModelSource]:
    """The Panda + 2F-85 as an editable :class:`mujoco.MjSpec`, normalised as the module says.

    Task scenes add their floor, objects, lights and cameras to the returned spec.
    """
    src = find_source(source)
    try:
        spec = _menagerie_with_gripper(src.path) if src.name == "menagerie" else mujoco.MjSpec.from_file(
            str(src.path)
        )
    except Exception as err:
        raise RobotModelError(f"could not load the Panda model from {src.path}: {err}") from err
    _to_position_servos(spec)
    for body in spec.bodies:
        if body.name and body.name != "world":
            body.gravcomp = 1.0
    pinch = spec.site("pinch")
    pinch.parent.add_site(name=TCP_SITE, pos=pinch.pos, quat=pinch.quat, size=[0.004, 0, 0], group=4)
    # Sensors of the source model are not used; dropping them keeps sensordata small and fast.
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    return spec, src
