"""The safety filter on its own (no ROS): rejections, limits, watchdog, e-stop, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.ros_nodes.embodiments import EMBODIMENTS
from robolearn.ros_nodes.embodiments.arm import ArmChecks
from robolearn.ros_nodes.embodiments.quadrotor import hover_or_land, tilt_of
from robolearn.ros_nodes.safety import Command, SafetyConfig, SafetyFilter

LOW, HIGH = [-2.8] * 7, [2.8] * 7
Q0 = np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785])


def make_filter(cfg: SafetyConfig, log=None) -> SafetyFilter:
    """The filter with its embodiment's checks, as the safety node builds it."""
    return SafetyFilter(cfg, EMBODIMENTS[cfg.embodiment].safety_checks(cfg), log=log)


def arm_filter(**overrides) -> tuple[SafetyFilter, list[str]]:
    logs: list[str] = []
    cfg = SafetyConfig(embodiment="arm", size=8, period=0.05, position_low=LOW, position_high=HIGH,
                       max_velocity=[2.0] * 7, max_acceleration=[20.0] * 7, max_step=0.25, **overrides)
    f = make_filter(cfg, log=logs.append)
    f.update_state(joint_pos=Q0)
    return f, logs


def cmd(t: float, q: np.ndarray, grip: float = 0.0) -> Command:
    return Command(t, np.append(q, grip))


def test_valid_command_passes_unchanged():
    f, _ = arm_filter()
    v = f.filter(cmd(1.0, Q0 + 0.01, 0.5), now=1.0)
    assert v.reason is None and v.clipped == []
    np.testing.assert_allclose(v.command.values, np.append(Q0 + 0.01, 0.5))


@pytest.mark.parametrize("values, reason", [
    (np.append(Q0, np.nan), "NaN or inf in command"),
    (np.append(Q0, np.inf), "NaN or inf in command"),
    (Q0, "wrong length 7, expected 8"),
    (np.zeros(20), "wrong length 20, expected 8"),
])
def test_bad_values_are_rejected_and_counted(values, reason):
    f, logs = arm_filter()
    v = f.filter(Command(1.0, values), now=1.0)
    assert v.command is None and v.reason == reason
    assert f.counts[reason] == 1 and any(reason in m for m in logs)


def test_stamps_out_of_order_stale_and_future_are_rejected():
    f, _ = arm_filter()
    assert f.filter(cmd(1.0, Q0), now=1.0).command is not None
    assert f.filter(cmd(0.99, Q0), now=1.01).reason == "out of order"
    assert f.filter(cmd(1.0, Q0), now=1.01).reason == "out of order"
    assert f.filter(cmd(1.02, Q0), now=1.5).reason.startswith("stale")
    assert f.filter(cmd(3.0, Q0), now=1.5).reason == "stamped in the future"


def test_huge_command_is_clipped_to_velocity_and_position_limits():
    f, _ = arm_filter()
    v = f.filter(cmd(1.0, Q0 + 1e6, 7.0), now=1.0)
    out = v.command.values
    assert np.all(np.abs(out[:7] - Q0) <= 2.0 * 0.05 + 1e-12)  # max_velocity * period
    assert out[7] == 1.0
    assert set(v.clipped) >= {"velocity/step", "gripper"}
    assert f.counts["clip:velocity/step"] == 1


def test_reject_mode_drops_limit_violations():
    f, _ = arm_filter(violation="reject")
    assert f.filter(cmd(1.0, Q0 + 1.0), now=1.0).reason == "velocity or per-step change limit"


def test_position_limit_clips_targets_into_range():
    f, _ = arm_filter()
    f.update_state(joint_pos=np.full(7, 2.79))
    out = f.filter(cmd(1.0, np.full(7, 2.85)), now=1.0).command.values
    assert np.all(out[:7] <= 2.8)


def test_acceleration_limit_bounds_the_change_of_lead():
    f, _ = arm_filter()
    f.filter(cmd(1.0, Q0 + 0.0), now=1.0)
    v = f.filter(cmd(1.05, Q0 + 0.1), now=1.05)  # lead 0.1 rad = 2 rad/s after 0 rad/s: dv = 2 > 20 * 0.05
    assert "acceleration" in v.clipped
    np.testing.assert_allclose(v.command.values[:7] - Q0, 20.0 * 0.05 * 0.05)


def test_workspace_box_rejects_targets_whose_end_effector_leaves_it():
    cfg = SafetyConfig(embodiment="arm", size=8, workspace_low=[0.0, -1.0, 0.0], workspace_high=[1.0, 1.0, 1.0])
    f = SafetyFilter(cfg, ArmChecks(cfg, fk=lambda q: np.array([0.5, 0.0, q[0]])))
    assert f.filter(cmd(1.0, np.full(7, 0.1)), now=1.0).command is not None
    assert "outside the workspace box" in f.filter(cmd(1.1, np.full(7, -0.1)), now=1.1).reason
    with pytest.raises(ValueError, match="forward kinematics"):
        make_filter(cfg)


def test_watchdog_holds_measured_position_and_commands_resume():
    f, logs = arm_filter()
    assert f.tick(now=1.0) is not None  # nothing received yet: hold
    f.filter(cmd(1.0, Q0 + 0.01, 0.8), now=1.0)
    assert f.tick(now=1.05) is None and not f.fallback_active
    f.update_state(joint_pos=Q0 + 0.01)
    hold = f.tick(now=1.2)
    assert f.fallback_active and hold is not None
    np.testing.assert_allclose(hold.values, np.append(Q0 + 0.01, 0.8))  # the gripper keeps its last command
    assert f.counts["fallback"] == 2 and any("watchdog" in m for m in logs)
    assert f.filter(cmd(1.25, Q0 + 0.02, 0.8), now=1.25).command is not None
    assert not f.fallback_active


def test_time_to_fallback_counts_down_from_the_last_accepted_command():
    f, _ = arm_filter(watchdog_timeout=0.1)
    assert f.time_to_fallback(1.0) is None  # nothing accepted yet
    f.filter(cmd(1.0, Q0 + 0.01), now=1.0)
    assert f.time_to_fallback(1.03) == pytest.approx(0.07)
    assert f.time_to_fallback(1.5) == 0.0  # overdue
    assert f.tick(now=1.1001) is not None and f.time_to_fallback(1.2) is None  # the fallback runs


def test_monitor_observing_commands_feeds_the_watchdog_and_counts_them_while_latched():
    f, logs = arm_filter()
    f.observe(cmd(1.0, Q0 + 0.01, 0.7), now=1.0)  # an inline filter's command seen on the robot's topic
    assert f.tick(now=1.05) is None and not f.fallback_active
    hold = f.tick(now=1.2)  # the observed commands stopped: hold, keeping the gripper the policy last sent
    assert f.fallback_active and hold.values[-1] == pytest.approx(0.7)
    f.observe(cmd(1.25, Q0, 0.7), now=1.25)
    assert not f.fallback_active
    f.estop()
    f.observe(cmd(1.3, Q0, 0.7), now=1.3)  # a monitor cannot block it: it counts and logs it
    assert f.counts["command while latched"] == 1 and any("while latched" in m for m in logs)
    assert f.tick(now=1.31) is not None and f.fallback_active


def test_estop_latches_until_reset():
    f, _ = arm_filter()
    f.estop()
    for i in range(3):
        assert f.filter(cmd(1.0 + i, Q0), now=1.0 + i).reason == "e-stop latched"
        assert f.tick(now=1.0 + i) is not None
    assert f.counts["e-stop latched"] == 3
    f.reset()
    assert f.filter(cmd(5.0, Q0), now=5.0).command is not None


def test_humanoid_fallback_is_damping():
    cfg = SafetyConfig(embodiment="humanoid", size=3, period=0.02, damping=3.0)
    f = make_filter(cfg)
    f.update_state(joint_pos=np.array([0.1, 0.2, 0.3]))
    out = f.tick(now=1.0)
    np.testing.assert_allclose(out.kp, 0.0)
    np.testing.assert_allclose(out.kd, 3.0)
    bad = Command(1.0, np.zeros(3), kp=np.array([1.0, -1.0, 1.0]), kd=np.ones(3))
    assert f.filter(bad, now=1.0).reason == "PD gains of the wrong length or negative"


def quad_filter(**overrides) -> SafetyFilter:
    f = make_filter(SafetyConfig(embodiment="quadrotor", size=4, period=0.01, hover_seconds=1.0, **overrides))
    f.update_state(position=np.array([0.0, 0.0, 1.0]), quat=np.array([1.0, 0.0, 0.0, 0.0]), velocity=np.zeros(3))
    return f


def test_quadrotor_rates_and_thrust_are_bounded():
    f = quad_filter()
    out = f.filter(Command(1.0, np.array([100.0, -100.0, 0.0, 3.0])), now=1.0).command.values
    np.testing.assert_allclose(out, [6.0, -6.0, 0.0, 1.0])


@pytest.mark.parametrize("state, reason", [
    ({"quat": np.array([np.cos(0.5), np.sin(0.5), 0.0, 0.0])}, "tilt"),
    ({"position": np.array([0.0, 0.0, 5.0])}, "altitude"),
    ({"position": np.array([4.0, 0.0, 1.0])}, "geofence"),
])
def test_quadrotor_state_limits_trip_hover_then_land(state, reason):
    f = quad_filter()
    f.update_state(**state)
    assert f.trip_reason is not None and reason in f.trip_reason
    assert f.filter(Command(1.0, np.array([0.0, 0.0, 0.0, 0.5])), now=1.0).reason.startswith("tripped")
    f.update_state(position=np.array([0.0, 0.0, 1.0]), quat=np.array([1.0, 0.0, 0.0, 0.0]))
    hover = f.tick(now=1.0).values
    land = f.tick(now=2.5).values
    assert hover[3] == pytest.approx(0.444, abs=1e-3) and land[3] < hover[3]
    f.reset()
    assert f.filter(Command(3.0, np.array([0.0, 0.0, 0.0, 0.5])), now=3.0).command is not None


def test_rearm_clears_a_trip_but_never_the_estop():
    f = quad_filter()
    assert f.rearm() is None  # nothing to clear
    f.update_state(quat=np.array([np.cos(0.5), np.sin(0.5), 0.0, 0.0]))
    assert f.rearm().startswith("tilt")
    f.update_state(quat=np.array([1.0, 0.0, 0.0, 0.0]))
    assert f.filter(Command(1.0, np.array([0.0, 0.0, 0.0, 0.5])), now=1.0).command is not None
    f.estop()
    f.update_state(quat=np.array([np.cos(0.5), np.sin(0.5), 0.0, 0.0]))
    assert f.rearm() is not None and f.estopped
    assert f.filter(Command(2.0, np.array([0.0, 0.0, 0.0, 0.5])), now=2.0).reason == "e-stop latched"


def test_hover_controller_levels_a_tilted_body():
    roll = 0.3
    quat = np.array([np.cos(roll / 2), np.sin(roll / 2), 0.0, 0.0])
    out = hover_or_land(quat, np.array([0, 0, 1.0]), np.zeros(3), 0.444, land=False)
    assert out[0] < 0 and abs(out[1]) < 1e-9  # rolls back
    assert out[3] > 0.444  # more thrust to hold altitude while tilted
    assert tilt_of(quat) == pytest.approx(roll)


def test_config_errors_name_the_field():
    """The embodiment's checks validate the limits they use (the safety node builds them at start-up)."""
    with pytest.raises(ValueError, match="position_low: 3 values for 7 joints"):
        make_filter(SafetyConfig(embodiment="arm", size=8, position_low=[0.0] * 3))
    with pytest.raises(ValueError, match="size must be 4"):
        make_filter(SafetyConfig(embodiment="quadrotor", size=8))
    with pytest.raises(ValueError, match="must be positive"):
        SafetyConfig(period=0.0)
