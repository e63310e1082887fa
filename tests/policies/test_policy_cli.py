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


def test_eval_on_device_auto_and_a_bad_device(tmp_path, capsys):
    """``robolearn eval --device auto`` (the default; the CPU here) evaluates a saved policy; ``--device gpu`` is
    refused in one line before anything loads."""
    import numpy as np

    from robolearn.cli.errors import user_message
    from robolearn.policies.checkpoint import make_policy, save
    from robolearn.policies.configuration import BCConfig, PolicyConfig

    keys = {"ee_pos": [3], "object_pos": [3]}
    cfg = PolicyConfig(type="bc", obs_shapes=keys, action_dim=5, n_obs_steps=1, horizon=4, n_action_steps=4,
                       bc=BCConfig(hidden_dims=[16]))
    policy = make_policy(cfg)
    box = {"min": -np.ones(3), "max": np.ones(3), "mean": np.zeros(3), "std": np.ones(3)}
    act = {"min": np.array([-0.02] * 3 + [-0.15, 0.0]), "max": np.array([0.02] * 3 + [0.15, 1.0]),
           "mean": np.zeros(5), "std": np.ones(5)}
    policy.set_stats({"ee_pos": box, "object_pos": box, "action": act})
    save(policy, tmp_path / "bc")
    argv = ["--policy", str(tmp_path / "bc"), "--env", "robolearn/PandaLift-v0", "--episodes", "2", "--num-envs", "2",
            "--out", str(tmp_path / "eval")]
    assert eval_cli.run(parse(eval_cli, [*argv, "--device", "auto"])) == 0
    assert json.loads((tmp_path / "eval" / "PandaLift-v0-nominal.json").read_text())["episodes"] == 2
    assert parse(eval_cli, argv).device == "auto"
    with pytest.raises(ValueError) as err:
        eval_cli.run(parse(eval_cli, [*argv, "--device", "gpu"]))
    line = user_message(err.value)
    assert line is not None and line.startswith("device 'gpu' is not one of auto, cpu, cuda, cuda:N, mps")
