"""ONNX export: every exported graph, run by onnxruntime, matches torch to 1e-4 for fixed noise, any batch."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from policy_helpers import DA, TA, TO, TP, make_obs, small_config, stats
from torch import nn

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from robolearn.policies import checkpoint  # noqa: E402
from robolearn.policies.diffusion import SCHEDULERS  # noqa: E402
from robolearn.policies.export import load_torchscript  # noqa: E402
from robolearn.policies.onnx_export import (  # noqa: E402
    export_denoiser_onnx,
    export_onnx,
    export_policy_onnx,
    load_onnx,
    require,
)

ATOL = 1e-4
BATCHES = (1, 3)  # exported at batch 2: the batch size stays free


def fitted(kind="diffusion", denoiser="unet", image=True):
    policy = checkpoint.make_policy(small_config(kind, denoiser, image)).eval()
    policy.set_stats(stats())
    with torch.no_grad():  # away from the seed's initialization, so a wrong weight shows
        for p in policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return policy


def history(obs: dict[str, np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
    """A fresh policy's history: the first observation repeated ``To`` times, ``(B, To, *shape)``."""
    return {k: np.repeat(obs[k][:, None], TO, axis=1) for k in keys}


def noise_for(b: int) -> np.ndarray:
    return np.random.default_rng(5).normal(size=(b, TP, DA)).astype(np.float32)


@pytest.mark.slow  # the dynamo exporter takes seconds to a minute per graph
@pytest.mark.parametrize("kind,denoiser,image", [("bc", "unet", True), ("diffusion", "mlp", False),
                                                 ("diffusion", "unet", True)])
def test_policy_graph_matches_act(tmp_path, kind, denoiser, image):
    """BC, and diffusion with the whole DDIM loop unrolled: physical obs (+ noise) -> physical chunk."""
    policy = fitted(kind, denoiser, image)
    path = export_policy_onnx(policy, tmp_path / "policy.onnx")
    session = load_onnx(path)
    info = json.loads(path.with_suffix(".json").read_text())
    names = [i.name for i in session.get_inputs()]
    assert names == [i["name"] for i in info["inputs"]] == policy.keys + (["noise"] if kind == "diffusion" else [])
    assert session.get_inputs()[0].shape[0] == "batch"
    assert json.loads(session.get_modelmeta().custom_metadata_map["robolearn"]) == info
    for b in BATCHES:
        obs, noise = make_obs(np.random.default_rng(b), b=b, image=image), noise_for(b)
        policy.reset()
        expected = policy.act(obs, noise)
        feed = history(obs, policy.keys) | ({"noise": noise} if kind == "diffusion" else {})
        (action,) = session.run(["action"], feed)
        assert action.shape == (b, TA, DA)
        np.testing.assert_allclose(action, expected, atol=ATOL, rtol=0)


def caller_loop(files, info: dict, obs_history: dict, noise: np.ndarray, policy) -> np.ndarray:
    """What a deployment runs with the split export: encoder once, then the scheduler loop over the
    denoiser graph; each step's prediction is also checked against the torch denoiser on the same input."""
    encoder, denoiser = load_onnx(files.encoder), load_onnx(files.denoiser)
    (cond,) = encoder.run(["cond"], obs_history)
    sched = SCHEDULERS[policy.cfg.diffusion.scheduler].from_config(info["scheduler"]["config"])
    with warnings.catch_warnings():  # diffusers' DPM-Solver calls np.array(tensor, copy=False)
        warnings.simplefilter("ignore", DeprecationWarning)
        sched.set_timesteps(info["num_inference_steps"])
    clip = info["noise_clip"]
    x = np.clip(noise, -clip, clip) if clip is not None else noise
    for t in sched.timesteps:
        timestep = np.full(len(x), int(t), dtype=np.int64)
        (pred,) = denoiser.run(["prediction"], {"sample": x, "timestep": timestep, "cond": cond})
        with torch.no_grad():
            ref = policy.denoiser(torch.from_numpy(x), torch.from_numpy(timestep), torch.from_numpy(cond))
        np.testing.assert_allclose(pred, ref.numpy(), atol=ATOL, rtol=0)
        x = sched.step(torch.from_numpy(pred), t, torch.from_numpy(x)).prev_sample.numpy()
    unnorm = info["action_unnormalize"]
    ta = info["n_action_steps"]
    return (x[:, :ta] - np.asarray(unnorm["offset"], np.float32)) / np.asarray(unnorm["scale"], np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver"])
def test_denoiser_graph_through_scheduler_matches_act(tmp_path, scheduler):
    """The split export (encoder + denoiser), stepped by diffusers' scheduler, equals ``act``."""
    policy = fitted("diffusion", "unet", image=True)
    policy.set_sampler(scheduler, 4)
    files = export_denoiser_onnx(policy, tmp_path / "split")
    info = json.loads(files.info.read_text())
    assert info["scheduler"]["class"] == type(policy.scheduler).__name__
    for b in BATCHES:
        obs, noise = make_obs(np.random.default_rng(b), b=b, image=True), noise_for(b)
        policy.reset()
        expected = policy.act(obs, noise)
        cond_torch = policy.encoder(policy.normalize_obs({k: torch.from_numpy(v) for k, v in
                                                          history(obs, policy.keys).items()}))
        (cond,) = load_onnx(files.encoder).run(None, history(obs, policy.keys))
        np.testing.assert_allclose(cond, cond_torch.detach().numpy(), atol=ATOL, rtol=0)
        action = caller_loop(files, info, history(obs, policy.keys), noise, policy)
        np.testing.assert_allclose(action, expected, atol=ATOL, rtol=0)


class TwoHeads(nn.Module):
    """A stand-in for a composed graph: two named inputs, two named outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lin(x) + y, x.sum(-1)


def test_export_onnx_any_module_named_dynamic_batch(tmp_path):
    module = TwoHeads().eval()
    example = (torch.randn(2, 4), torch.randn(2, 3))
    path = export_onnx(module, example, ["x", "y"], ["z", "s"], tmp_path / "m.onnx", metadata={"k": "v"})
    session = load_onnx(path)
    assert [i.name for i in session.get_inputs()] == ["x", "y"]
    assert [o.name for o in session.get_outputs()] == ["z", "s"]
    assert session.get_modelmeta().custom_metadata_map["k"] == "v"
    x, y = np.ones((5, 4), np.float32), np.zeros((5, 3), np.float32)
    z, s = session.run(None, {"x": x, "y": y})
    with torch.no_grad():
        ez, es = module(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(z, ez.numpy(), atol=1e-6)
    np.testing.assert_allclose(s, es.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="batch dimension >= 2"):
        export_onnx(module, (torch.randn(1, 4), torch.randn(1, 3)), ["x", "y"], ["z", "s"], tmp_path / "b.onnx")
    with pytest.raises(ValueError, match="2 example inputs but 1 input names"):
        export_onnx(module, example, ["x"], ["z", "s"], tmp_path / "c.onnx")


def test_export_refusals_and_missing_extra(tmp_path):
    policy = fitted(image=False)
    policy.set_sampler("ddpm", 5)
    with pytest.raises(ValueError, match="deterministic DDIM"):
        export_policy_onnx(policy, tmp_path / "p.onnx")
    with pytest.raises(TypeError, match="needs a diffusion policy"):
        export_denoiser_onnx(fitted("bc", image=False), tmp_path / "split")
    with pytest.raises(RuntimeError, match="normalizer has no statistics"):
        export_policy_onnx(checkpoint.make_policy(small_config("bc")), tmp_path / "p.onnx")
    with pytest.raises(ImportError, match=r"pip install robolearn\[export\]"):
        require("robolearn_no_such_module")


@pytest.mark.slow
def test_cli_export(tmp_path, capsys):
    """``robolearn export``: a saved BC checkpoint to ONNX and TorchScript equals ``act``; the split
    diffusion export; a wrong combination is an error, not a traceback."""
    from robolearn.cli.main import main

    bc = checkpoint.save(fitted("bc", image=False), tmp_path / "bc")
    assert main(["export", "--policy", str(bc), "--out", str(tmp_path / "bc.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    policy = checkpoint.load(bc)
    obs = make_obs(np.random.default_rng(0), b=2)
    (action,) = load_onnx(tmp_path / "bc.onnx").run(["action"], history(obs, policy.keys))
    np.testing.assert_allclose(action, policy.act(obs), atol=ATOL, rtol=0)
    assert main(["export", "--policy", str(bc), "--format", "torchscript", "--out", str(tmp_path / "bc.pt")]) == 0
    inputs = [torch.from_numpy(v) for v in history(obs, policy.keys).values()]
    with torch.no_grad():
        np.testing.assert_allclose(load_torchscript(tmp_path / "bc.pt")(*inputs).numpy(), action, atol=ATOL)
    diffusion = checkpoint.save(fitted("diffusion", "mlp", image=False), tmp_path / "diffusion")
    split = tmp_path / "split"
    assert main(["export", "--policy", str(diffusion), "--graph", "denoiser", "--steps", "3",
                 "--out", str(split)]) == 0
    assert json.loads((split / "denoiser.json").read_text())["num_inference_steps"] == 3
    assert {p.name for p in split.iterdir()} == {"encoder.onnx", "denoiser.onnx", "denoiser.json"}
    assert main(["export", "--policy", str(bc), "--graph", "denoiser", "--out", str(split)]) == 2
    assert "diffusion policy" in capsys.readouterr().err
