"""The robolearn command: subcommands run their real functions end to end."""

import json
import subprocess
import sys

import pytest
from tests_support import can_render

from robolearn.cli.main import main


def test_envs_lists_every_task(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "robolearn/PandaLift-v0" in out and "robolearn/PandaPegInsert-v0" in out
    assert "control 20 Hz over physics 500 Hz" in out and "obs joint_pos" in out


def test_rollout_writes_results_config_and_video(tmp_path, capsys):
    video = 1 if can_render() else 0
    argv = ["rollout", "--env", "robolearn/PandaLift-v0", "--episodes", "2", "--video", str(video),
            f"out_dir={tmp_path}", "run_name=r"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "success" in out and "%" in out
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["episodes"] == 2 and results["successes"] == 2
    assert (tmp_path / "r" / "config.yaml").is_file()
    if video:
        mp4 = tmp_path / "r" / "videos" / "episode000.mp4"
        assert mp4.stat().st_size > 1000
        import imageio.v3 as iio

        frames = iio.imread(mp4)
        assert frames.ndim == 4 and frames.shape[-1] == 3 and len(frames) > 10


def test_bad_config_key_exits_with_named_error(capsys):
    assert main(["rollout", "--episodes", "1", "env.bogus=3"]) == 2
    err = capsys.readouterr().err
    assert "env.bogus" in err and "allowed keys" in err


def test_unknown_command():
    assert main(["flyaway"]) == 2


@pytest.mark.slow
def test_console_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "robolearn", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "rollout" in out and "envs" in out
