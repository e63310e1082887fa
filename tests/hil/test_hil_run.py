"""The HIL run end to end on PandaPegInsert, through the shared off-policy loop: runner ``sync`` (with the
dataset and a resume, also of a run directory written by the HIL loop before it was the shared one) and runner
``process``, whose learner process is SIGKILLed mid-run."""

from __future__ import annotations

import argparse
import os
import signal
import time

import numpy as np
import pytest
import torch

from robolearn.cli.hil import add_arguments, build_config
from robolearn.cli.hil import run as cli_run
from robolearn.core.config import ConfigError
from robolearn.datasets.reader import EpisodeDataset
from robolearn.hil import config as hil_config
from robolearn.hil.config import HILConfig
from robolearn.hil.run import run_hil
from robolearn.refine.methods import ResidualParams
from robolearn.rl.checkpoint import latest_checkpoint
from robolearn.rl.learner import LearnerConfig
from robolearn.teleop.devices import DEVICES as TELEOP_DEVICES
from robolearn.wiring import hil_sources

torch.set_num_threads(1)


def tiny(mode: str, steps: int, **kw) -> HILConfig:
    cfg = HILConfig(mode=mode, num_envs=2, total_env_steps=steps, min_buffer=32, critic_warmup_updates=5,
                    publish_every=5, checkpoint_every=20, updates_per_env_step=0.25, residual=ResidualParams(0.25),
                    learner=LearnerConfig(algo="td3", hidden=[32, 32], batch_size=32, drq_pad=0), **kw)
    cfg.sim_human.noise, cfg.sim_human.stall_steps = 0.3, 30
    return cfg


def test_in_process_run_writes_every_episode_and_resumes(tmp_path) -> None:
    run = tmp_path / "run"
    sources = hil_sources(tiny("hil-serl", 240))
    result = run_hil(tiny("hil-serl", 240), sources, run)
    assert result.env_steps == 240 and result.updates > 0 and result.takeovers > 0
    assert result.curve[-1]["weights_version"] == result.updates
    reader = EpisodeDataset(run / "dataset")
    assert len(reader) == result.episodes > 0
    flags = np.concatenate([reader.episode(i).intervention for i in range(len(reader))])
    assert 0 < flags.sum() <= result.intervention_steps
    assert (run / "policy" / "refined.yaml").is_file()
    with pytest.raises(FileExistsError, match="resume"):
        run_hil(tiny("hil-serl", 300), sources, run)
    more = run_hil(tiny("hil-serl", 300), sources, run, resume=True)
    assert more.env_steps == 300 and more.updates > result.updates
    with pytest.raises(ValueError, match="mode 'hil-serl', this run has 'rlif'"):
        run_hil(tiny("rlif", 400), sources, run, resume=True)


def old_layout(run) -> None:
    """Rewrite the run's latest checkpoint as the HIL loop wrote it before it was the shared loop (the learner's
    counters under ``counters``, no loop state), in today's file format (an old pickled ``state.pt`` is
    converted first: ``python -m robolearn.rl.checkpoint convert``)."""
    from robolearn.core.checkpoints import write_manifest
    from robolearn.rl.checkpoint import _load_state, _write_state

    path = latest_checkpoint(run)
    state = _load_state(path)
    old = {"learner": state["learner"], "counters": state["learner_counters"], "rng": state["rng"],
           "torch_rng": state["torch_rng"], "mode": state["mode"]}
    _write_state(path, old)
    write_manifest(path, [f.name for f in path.iterdir() if f.name != "MANIFEST.json"])


def test_a_run_dir_of_the_earlier_hil_loop_resumes(tmp_path) -> None:
    run = tmp_path / "old"
    cfg = tiny("rlif", 120, dataset=False)
    first = run_hil(cfg, hil_sources(cfg), run)
    old_layout(run)
    more = run_hil(tiny("rlif", 180, dataset=False), hil_sources(cfg), run, resume=True)
    assert more.env_steps == 180 and more.updates > first.updates
    assert (latest_checkpoint(run) / "state.json").is_file()


def test_devices_are_the_teleop_list_plus_the_simulated_person() -> None:
    assert hil_config.DEVICES == ("sim-human", *TELEOP_DEVICES)


def test_learner_killed_actor_keeps_acting_and_restart_resumes(tmp_path) -> None:
    killed: dict[str, int] = {}

    def kill_once(loop, step) -> None:
        backend = loop.backend
        if not killed and backend.updates >= 25:  # a checkpoint (every 20 updates) exists
            killed["env_steps"], killed["updates"] = loop.env_steps, backend.updates
            os.kill(backend.pid, signal.SIGKILL)
        elif killed:
            time.sleep(0.03)  # a robot's control rate from here on: the new learner has time to start

    cfg = tiny("rlif", 900, split=True, dataset=False)
    cfg.updates_per_env_step = 1.0
    result = run_hil(cfg, hil_sources(cfg), tmp_path / "split", on_step=kill_once)
    assert killed, "the learner never reached 25 updates"
    assert result.env_steps == 900  # the actor ran to the end
    assert len(result.faults) == 1 and "exited with code -9" in result.faults[0]
    (restart,) = result.learner_restarts
    assert restart["resumed_env_steps"] > restart["fault_env_steps"] >= killed["env_steps"]  # acted while down
    assert 20 <= restart["restored_updates"] <= killed["updates"]  # resumed from the last checkpoint
    assert result.updates > restart["restored_updates"]


def test_cli_config_errors_and_a_hg_dagger_run(tmp_path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ConfigError, match="num_envs must be 1"):
        build_config(parser.parse_args(["--device", "keyboard", "num_envs=2"]))
    with pytest.raises(ConfigError, match="resume needs --run-dir"):
        build_config(parser.parse_args(["--resume"]))
    args = parser.parse_args(["--mode", "hg-dagger", "--device", "sim-human", "--steps", "120", "--run-dir",
                              str(tmp_path / "cli"), "num_envs=2", "min_buffer=16", "learner.hidden=[32,32]",
                              "learner.batch_size=16", "sim_human.action_threshold=0.05"])
    assert cli_run(args) == 0
    out = capsys.readouterr().out
    assert "120 env steps" in out and "takeovers" in out
