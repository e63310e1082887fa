"""Real training steps on the synthetic task: losses fall, and the training loop saves and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from policy_helpers import make_batch, make_obs, small_config, stats

from robolearn.policies import checkpoint
from robolearn.train import OptimConfig, TrainConfig, train


def mean_loss(policy, batches):
    policy.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return float(np.mean([policy.compute_loss(b)[0].item() for b in batches]))


@pytest.mark.parametrize(
    "kind,denoiser,image,gaussian",
    [("bc", "unet", False, False), ("bc", "unet", True, True), ("diffusion", "unet", True, False),
     ("diffusion", "mlp", False, False)],
)
def test_training_steps_lower_the_loss(kind, denoiser, image, gaussian):
    torch.manual_seed(0)
    cfg = small_config(kind, denoiser, image)
    cfg.bc.gaussian = gaussian
    policy = checkpoint.make_policy(cfg)
    policy.set_stats(stats())
    rng = np.random.default_rng(0)
    held_out = [make_batch(rng, 64, image) for _ in range(2)]
    before = mean_loss(policy, held_out)
    optim = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    policy.train()
    for _ in range(60):
        loss, _ = policy.compute_loss(make_batch(rng, 32, image))
        optim.zero_grad()
        loss.backward()
        optim.step()
    after = mean_loss(policy, held_out)
    assert after < 0.7 * before if not gaussian else after < before - 0.5, (before, after)


def test_padded_actions_do_not_count():
    policy = checkpoint.make_policy(small_config("bc"))
    policy.set_stats(stats())
    batch = make_batch(np.random.default_rng(0), 8)
    batch["action_is_pad"][:] = False
    batch["action_is_pad"][:, -1] = True
    base, _ = policy.compute_loss(batch)
    batch["action"][:, -1] = 1e3  # garbage beyond the episode end
    same, _ = policy.compute_loss(batch)
    assert torch.allclose(base, same)


def test_bad_batches_raise_clear_errors():
    policy = checkpoint.make_policy(small_config())
    policy.set_stats(stats())
    batch = make_batch(np.random.default_rng(0), 4)
    with pytest.raises(KeyError, match="lacks 'action_is_pad'"):
        policy.compute_loss({k: v for k, v in batch.items() if k != "action_is_pad"})
    with pytest.raises(ValueError, match=r"'action' must be a \(B, Tp, Da\) = \(B, 8, 3\)"):
        policy.compute_loss(batch | {"action": batch["action"][:, :5]})
    with pytest.raises(ValueError, match="batch obs 'x' has shape"):
        policy.compute_loss(batch | {"obs": batch["obs"] | {"x": batch["obs"]["x"][:, :1]}})


def test_train_loop_checkpoints_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    batches = [make_batch(rng, 16) for _ in range(4)]
    policy_cfg = small_config("diffusion", "mlp")
    policy_cfg.obs_shapes, policy_cfg.action_dim = {}, 0  # filled from the data
    cfg = TrainConfig(policy=policy_cfg, steps=6, save_every=4, log_every=2, run_dir=str(tmp_path / "run"),
                      optim=OptimConfig(lr=1e-3, warmup_steps=2), progress=False, ema_decay=0.9)
    result = train(cfg, batches, stats())
    assert result.step == 6 and result.checkpoint.name == "step_00000006"
    steps = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert steps == ["step_00000004", "step_00000006"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6] and all("train/loss" in x for x in lines)
    policy = checkpoint.load(tmp_path / "run")
    assert policy.cfg.obs_shapes == {"v": [2], "x": [4]}
    assert policy.act(make_obs(rng)).shape == (2, 4, 3)

    cfg.steps = 9
    resumed = train(cfg, batches, stats())
    assert resumed.step == 9 and [h["step"] for h in resumed.history] == [8, 9]
    state = torch.load(resumed.checkpoint / "train_state.pt", weights_only=True)
    assert state["step"] == 9 and state["ema_updates"] == 9
    assert state["optimizer"]["state"][0]["step"].item() == 9


def test_train_on_device_auto_and_load_anywhere(tmp_path):
    """``device: auto`` (the default; the CPU here) trains; the checkpoint loads on ``auto`` and on the CPU and
    acts on numpy observations with numpy actions; a misspelt device stops before the run directory is made."""
    from robolearn.core.config import ConfigError
    from robolearn.rl.devices import resolve_device

    rng = np.random.default_rng(0)
    cfg = TrainConfig(policy=small_config("bc"), steps=2, save_every=2, log_every=1, run_dir=str(tmp_path / "run"),
                      progress=False, device="auto")
    assert train(cfg, [make_batch(rng, 8)], stats()).step == 2
    obs = make_obs(rng)
    out = {}
    for device in ("auto", "cpu"):
        policy = checkpoint.load(tmp_path / "run", device=resolve_device(device))
        assert policy.device == resolve_device(device)
        out[device] = policy.act(obs)
        assert isinstance(out[device], np.ndarray) and out[device].dtype == np.float32
    np.testing.assert_allclose(out["auto"], out["cpu"], atol=1e-5)
    bad = TrainConfig(policy=small_config("bc"), steps=2, run_dir=str(tmp_path / "bad"), device="gpu")
    with pytest.raises(ConfigError, match="device 'gpu' is not one of"):
        train(bad, [make_batch(rng, 8)], stats())
    assert not (tmp_path / "bad").exists()
