"""End to end on PandaLift: collect a few demos, ``robolearn train`` a few steps, ``robolearn eval``."""

from __future__ import annotations

import argparse
import json

import pytest

from robolearn.cli import eval as eval_cli
from robolearn.cli import train as train_cli
from robolearn.collect import CollectConfig, collect
from robolearn.core.config import from_dict
from robolearn.policies.checkpoint import load


def parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.slow
def test_collect_train_eval(tmp_path, capsys):
    data = tmp_path / "demos"
    cfg = from_dict(CollectConfig, {"env_id": "robolearn/PandaLift-v0", "episodes": 2, "out": str(data),
                                    "noise": 0.3, "num_envs": 2})
    collect(cfg)
    run = tmp_path / "run"
    small = ["policy.diffusion.unet_channels=[16,32]", "policy.diffusion.n_groups=4", "policy.horizon=8",
             "policy.n_action_steps=4", "data.batch_size=8", "eval.env_id=", "progress=false", "log_every=2"]
    args = parse(train_cli, ["--config", "configs/bc/panda_lift_diffusion.yaml", "--data", str(data),
                             "--run-dir", str(run), "--steps", "4", *small])
    assert train_cli.run(args) == 0
    assert load(run).cfg.obs_shapes["object_pos"] == [3]
    args = parse(eval_cli, ["--policy", str(run), "--env", "robolearn/PandaLift-v0", "--episodes", "2",
                            "--num-envs", "2", "--steps", "2", "--out", str(tmp_path / "eval")])
    assert eval_cli.run(args) == 0
    assert "success" in capsys.readouterr().out
    record = json.loads((tmp_path / "eval" / "PandaLift-v0-nominal.json").read_text())
    assert record["episodes"] == 2 and 0.0 <= record["success_ci_low"] <= record["success_ci_high"] <= 1.0
