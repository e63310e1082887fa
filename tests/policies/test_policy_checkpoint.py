"""Checkpoint directories (safetensors + config + normalizer) and TorchScript export round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from policy_helpers import DA, TP, make_obs, small_config, stats
from safetensors.torch import load_file

from robolearn.policies import checkpoint
from robolearn.policies.export import export_torchscript, load_torchscript


def fitted(kind="diffusion", denoiser="unet", image=False):
    policy = checkpoint.make_policy(small_config(kind, denoiser, image)).eval()
    policy.set_stats(stats())
    with torch.no_grad():  # move away from the seed's initialization so the round trip is meaningful
        for p in policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return policy


@pytest.mark.parametrize("kind,image", [("bc", True), ("diffusion", True), ("diffusion", False)])
def test_save_load_round_trip(tmp_path, kind, image):
    policy = fitted(kind, image=image)
    ckpt = checkpoint.save(policy, tmp_path / "ckpt")
    assert {p.name for p in ckpt.iterdir()} == {"config.yaml", "model.safetensors", "normalizer.safetensors"}
    norm = load_file(str(ckpt / "normalizer.safetensors"))
    weights = load_file(str(ckpt / "model.safetensors"))
    assert "action__scale" in norm and not any(k.startswith("normalizer.") for k in weights)
    loaded = checkpoint.load(ckpt)
    assert type(loaded) is type(policy) and loaded.cfg == policy.cfg
    obs = make_obs(np.random.default_rng(0), image=image)
    noise = np.random.default_rng(1).normal(size=(2, TP, DA)).astype(np.float32)
    np.testing.assert_array_equal(policy.act(obs, noise), loaded.act(obs, noise))


def test_sampler_chosen_at_load_time(tmp_path):
    ckpt = checkpoint.save(fitted(), tmp_path / "ckpt")
    policy = checkpoint.load(ckpt, scheduler="dpmsolver", num_inference_steps=3)
    assert type(policy.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert policy.cfg.diffusion.num_inference_steps == 3
    assert policy.act(make_obs(np.random.default_rng(0))).shape == (2, 4, DA)
    with pytest.raises(ValueError, match="apply to diffusion policies"):
        checkpoint.load(checkpoint.save(fitted("bc"), tmp_path / "bc"), num_inference_steps=3)


def test_load_from_run_dir_picks_latest_step(tmp_path):
    a, b = fitted(), fitted("bc")
    checkpoint.save(a, tmp_path / "run" / "checkpoints" / "step_00000010")
    checkpoint.save(b, tmp_path / "run" / "checkpoints" / "step_00000200")
    assert checkpoint.load(tmp_path / "run").cfg.type == "bc"


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        checkpoint.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        checkpoint.load(tmp_path / "empty")
    ckpt = checkpoint.save(fitted(), tmp_path / "ckpt")
    (ckpt / "normalizer.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="lacks normalizer.safetensors"):
        checkpoint.load(ckpt)
    ckpt = checkpoint.save(fitted(), tmp_path / "ckpt2")
    text = (ckpt / "config.yaml").read_text().replace("step_embed_dim: 16", "step_embed_dim: 32")
    (ckpt / "config.yaml").write_text(text)
    with pytest.raises(ValueError, match="weights do not match its config.yaml"):
        checkpoint.load(ckpt)
    (ckpt / "config.yaml").write_text(text.replace("seed: 0", "sed: 0"))
    with pytest.raises(ValueError, match="unknown key 'sed'"):
        checkpoint.load(ckpt)


@pytest.mark.parametrize("kind,denoiser", [("bc", "unet"), ("diffusion", "unet"), ("diffusion", "mlp")])
def test_torchscript_export_matches_act(tmp_path, kind, denoiser):
    policy = fitted(kind, denoiser, image=True)
    path = export_torchscript(policy, tmp_path / "export" / "policy.pt")
    graph = load_torchscript(path)
    info = json.loads((path.parent / "export.json").read_text())
    assert [i["name"] for i in info["inputs"]] == policy.keys + (["noise"] if kind == "diffusion" else [])
    for b in (1, 3):  # traced at batch 2: the batch size stays free
        obs = make_obs(np.random.default_rng(b), b=b, image=True)
        noise = np.random.default_rng(5).normal(size=(b, TP, DA)).astype(np.float32)
        policy.reset()
        expected = policy.act(obs, noise)
        inputs = [torch.from_numpy(obs[k])[:, None].repeat_interleave(2, 1) for k in policy.keys]
        if kind == "diffusion":
            inputs.append(torch.from_numpy(noise))
        with torch.no_grad():
            np.testing.assert_allclose(graph(*inputs).numpy(), expected, atol=1e-5)


def test_export_refuses_stochastic_sampler(tmp_path):
    policy = fitted()
    policy.set_sampler("ddpm", 5)
    with pytest.raises(ValueError, match="deterministic DDIM"):
        export_torchscript(policy, tmp_path / "p.pt")
