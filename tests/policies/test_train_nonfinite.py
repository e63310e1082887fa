"""Training stops on a NaN loss before the bad step reaches the weights, keeping the last good checkpoint,
and refuses counts that cannot run before it makes a run directory (issue 25, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from policy_helpers import make_batch, small_config, stats

from robolearn.core.config import ConfigError
from robolearn.policies import checkpoint
from robolearn.train import NonFiniteLossError, OptimConfig, TrainConfig, train


def config(tmp_path, steps: int) -> TrainConfig:
    policy_cfg = small_config("bc")
    policy_cfg.obs_shapes, policy_cfg.action_dim = {}, 0  # filled from the data
    return TrainConfig(policy=policy_cfg, steps=steps, save_every=2, log_every=1, run_dir=str(tmp_path / "run"),
                       optim=OptimConfig(lr=1e-3, warmup_steps=1), progress=False, ema_decay=0)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    batches = [make_batch(rng, 8) for _ in range(5)]
    batches[3]["action"][0, 0, 0] = np.nan  # step 4 sees a NaN
    with pytest.raises(NonFiniteLossError) as err:
        train(config(tmp_path, 6), batches, stats())
    message = str(err.value)
    assert "\n" not in message and "at step 4" in message and "step_00000002" in message, message
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == ["step_00000002"]
    policy = checkpoint.load(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in policy.parameters())


@pytest.mark.parametrize(("key", "value"), [("steps", -5), ("steps", 0), ("save_every", 0), ("log_every", -1)])
def test_counts_that_cannot_run_are_refused_before_the_run_dir(tmp_path, key, value):
    cfg = config(tmp_path, 4)
    setattr(cfg, key, value)
    with pytest.raises(ConfigError, match=f"{key} must be >= 1, got {value}"):
        train(cfg, [make_batch(np.random.default_rng(0), 8)], stats())
    assert not (tmp_path / "run").exists()


def test_resume_skips_a_damaged_newest_checkpoint_by_name(tmp_path, caplog):
    import logging

    rng = np.random.default_rng(0)
    batches = [make_batch(rng, 8) for _ in range(3)]
    cfg = config(tmp_path, 4)
    train(cfg, batches, stats())
    damaged = tmp_path / "run" / "checkpoints" / "step_00000004" / "train_state.pt"
    damaged.write_bytes(damaged.read_bytes()[:100])
    cfg.steps = 6
    with caplog.at_level(logging.WARNING):
        resumed = train(cfg, batches, stats())
    assert [h["step"] for h in resumed.history] == [3, 4, 5, 6]  # from step 2, the intact one
    warnings = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warnings) == 1 and str(damaged) in warnings[0] and "\n" not in warnings[0]
