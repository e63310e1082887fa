"""Every user error from issue 25 is one line on stderr with exit status 2 and no traceback; --debug keeps it.

Each case runs the real command (``main([...])`` in process; the closed pipe in a subprocess).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from robolearn.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
QUAD_DEPLOY = ROOT / "configs" / "deploy" / "quad_hover_sim.yaml"
HAS_ROS = importlib.util.find_spec("rclpy") is not None


@pytest.fixture(scope="module")
def panda_policy(tmp_path_factory) -> Path:
    """A saved base policy that reads Panda observations (untrained: only its keys matter here)."""
    from robolearn.policies import checkpoint
    from robolearn.policies.configuration import PolicyConfig

    cfg = PolicyConfig(type="bc", obs_shapes={"ee_pos": [3], "joint_pos": [7]}, action_dim=5, n_obs_steps=1,
                       horizon=2, n_action_steps=1)
    return checkpoint.save(checkpoint.make_policy(cfg), tmp_path_factory.mktemp("panda") / "policy")


def cases(tmp: Path, policy: Path) -> list[tuple[list[str], str]]:
    """(argv, a phrase the one line must hold) for each case of the issue's finding 8."""
    a_file = tmp / "a_file"
    a_file.write_text("x")
    bad_train = tmp / "train.yaml"
    bad_train.write_text(f"steps: -5\nrun_dir: {tmp / 'never'}\n")
    rows = [
        (["rollout", "--env", "robolearn/PandaFly-v0", "--episodes", "1", f"out_dir={tmp}"], "robolearn envs"),
        (["rollout", "--env", "Nope/Bar-v0", "--episodes", "1", f"out_dir={tmp}"], "robolearn envs"),
        (["collect", "--env", "robolearn/PandaFly-v0", "--episodes", "1", "--out", str(tmp / "c")], "robolearn envs"),
        (["eval", "--policy", "expert", "--env", "Nope/Bar-v0", "--episodes", "1"], "robolearn envs"),
        (["collect", "--env", "robolearn/PandaLift-v0", "--episodes", "-3", "--out", str(tmp / "d")], "-3"),
        (["collect", "--env", "robolearn/PandaLift-v0", "--episodes", "0", "--out", str(tmp / "d")], ">= 1"),
        (["eval", "--policy", str(tmp), "--env", "robolearn/PandaLift-v0", "--episodes", "1"], str(tmp)),
        (["eval", "--policy", "expert:noise=abc", "--env", "robolearn/PandaLift-v0"], "noise must be a number"),
        (["eval", "--policy", "expert", "--env", "robolearn/PandaLift-v0", "--episodes", "0"], ">= 1"),
        (["eval", "--policy", "expert", "--env", "robolearn/PandaLift-v0", "--episodes", "1",
          "--out", str(a_file / "out")], str(a_file / "out")),
        (["eval", "--policy", str(policy), "--env", "robolearn/QuadHover-v0", "--episodes", "1"], "'ee_pos'"),
        (["launch", str(policy)], "--policy"),
        (["train", "--config", str(bad_train)], "steps must be >= 1, got -5"),
        (["refine", "--method", "residual", "--base", "expert", "--steps", "-5",
          "--run-dir", str(tmp / "never")], "total_env_steps (--steps) must be >= 1, got -5"),
        (["rollout", "--episodes", "1", "env.bogus=3"], "bogus"),
    ]
    if HAS_ROS:
        rows.append((["launch", str(QUAD_DEPLOY), "--policy", str(policy), "--episodes", "1"], "'ee_pos'"))
    return rows


def test_each_user_error_is_one_line_with_status_2(tmp_path, panda_policy, capsys):
    for argv, phrase in cases(tmp_path, panda_policy):
        code = main(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
        assert code == 2, (argv, err)
        assert len(lines) == 1 and "Traceback" not in err, (argv, err)
        assert lines[0].startswith(f"robolearn {argv[0]}: ") and phrase in lines[0], (argv, lines[0])
    assert not (tmp_path / "never").exists()  # steps: -5 was refused before a run directory was made
    assert not list(tmp_path.glob("rollout-*"))  # so was a wrong env id


def test_teleop_viewer_off_is_a_string_not_a_bool(capsys):
    code = main(["teleop", "--viewer", "off", "--episodes", "1"])
    err = capsys.readouterr().err
    assert "expected str" not in err and "Traceback" not in err
    assert code == 2 and len(err.strip().splitlines()) == 1  # under pytest stdin is no terminal: one line


def test_debug_keeps_the_traceback(tmp_path):
    from robolearn.core.config import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "rollout", "--episodes", "1", "env.bogus=3"])


def test_closed_stdout_pipe_exits_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "robolearn", "envs"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # the reader went away, as `| head` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_dataset_info_into_a_closed_pipe_exits_quietly(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "datasets"))
    try:
        from dataset_helpers import write_dataset
    finally:
        sys.path.pop(0)
    write_dataset(tmp_path / "d", [5, 6])
    proc = subprocess.Popen([sys.executable, "-m", "robolearn", "dataset", "info", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.close()  # `robolearn dataset info | head` after head has exited
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err
