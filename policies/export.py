"""Export of a policy's inference graph to TorchScript, for deployment without Python-side policy code.

The exported module computes what ``policy.infer`` computes, from physical inputs to physical outputs:

* inputs: one tensor per observation key in ``policy.keys`` order, each ``(B, To, *shape)`` (state
  float32, images uint8), then for a diffusion policy the initial noise ``(B, Tp, Da)`` float32;
* output: the executed chunk ``(B, Ta, Da)`` float32 in physical units.

A diffusion policy is exported with DDIM at eta = 0 and its configured number of steps, unrolled
into the graph; the per-step coefficients come from diffusers' ``DDIMScheduler``, so the result
matches ``act`` with the same noise. ``export.json`` next to the file lists the inputs and shapes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from robolearn.policies.base import ChunkPolicy
from robolearn.policies.configuration import is_image_key
from robolearn.policies.diffusion import DiffusionPolicy, make_scheduler


class DDIMGraph(nn.Module):
    """Observation history + noise -> executed chunk, with DDIM (eta = 0) unrolled over fixed steps."""

    def __init__(self, policy: DiffusionPolicy) -> None:
        super().__init__()
        self.policy = policy
        d = policy.cfg.diffusion
        sched = make_scheduler(d, "ddim")
        sched.set_timesteps(d.num_inference_steps)
        ratio = d.num_train_timesteps // d.num_inference_steps
        ts = sched.timesteps.long()
        prev = ts - ratio
        alpha_prev = torch.where(
            prev >= 0, sched.alphas_cumprod[prev.clamp_min(0)], sched.final_alpha_cumprod.expand_as(prev)
        )
        self.n_steps = int(ts.numel())
        self.register_buffer("timesteps", ts)
        self.register_buffer("alpha", sched.alphas_cumprod[ts].float())
        self.register_buffer("alpha_prev", alpha_prev.float())

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        p = self.policy
        obs = p.normalize_obs(dict(zip(p.keys, inputs[:-1], strict=True)))
        cond = p.encoder(obs)
        x = inputs[-1].float()
        d = p.cfg.diffusion
        if d.noise_clip is not None:
            x = x.clamp(-d.noise_clip, d.noise_clip)
        for i in range(self.n_steps):
            a, a_prev = self.alpha[i], self.alpha_prev[i]
            pred = p.denoiser(x, self.timesteps[i].expand(x.shape[0]), cond)
            if d.prediction_type == "epsilon":
                eps, x0 = pred, (x - (1 - a).sqrt() * pred) / a.sqrt()
            else:
                x0, eps = pred, (x - a.sqrt() * pred) / (1 - a).sqrt()
            if d.clip_sample:
                x0 = x0.clamp(-1.0, 1.0)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        return p.normalizer.unnormalize("action", x[:, : p.cfg.n_action_steps])


class DirectGraph(nn.Module):
    """Observation history -> executed chunk for non-generative policies (BC)."""

    def __init__(self, policy: ChunkPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.policy.infer(dict(zip(self.policy.keys, inputs, strict=True)))


def example_inputs(policy: ChunkPolicy, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Zero inputs of the exported graph for batch size ``batch`` (see module docstring)."""
    cfg = policy.cfg
    inputs = []
    for key in policy.keys:
        dtype = torch.uint8 if is_image_key(key) else torch.float32
        inputs.append(torch.zeros((batch, cfg.n_obs_steps, *policy.shapes[key]), dtype=dtype))
    if isinstance(policy, DiffusionPolicy):
        inputs.append(torch.zeros((batch, *policy.noise_shape)))
    return tuple(inputs)


def input_names(policy: ChunkPolicy) -> list[str]:
    """Names of the exported graph's inputs: ``policy.keys`` in order, then ``noise`` for diffusion."""
    return list(policy.keys) + (["noise"] if isinstance(policy, DiffusionPolicy) else [])


def policy_graph(policy: ChunkPolicy) -> nn.Module:
    """The module an export traces: ``DDIMGraph`` for diffusion (DDIM only), ``DirectGraph`` otherwise (CPU, eval)."""
    if isinstance(policy, DiffusionPolicy) and policy.cfg.diffusion.scheduler != "ddim":
        raise ValueError(f"export supports the deterministic DDIM sampler; policy uses "
                         f"'{policy.cfg.diffusion.scheduler}' (call set_sampler('ddim', steps) first)")
    graph = DDIMGraph(policy) if isinstance(policy, DiffusionPolicy) else DirectGraph(policy)
    return graph.cpu().eval()


def set_export_sampler(policy: ChunkPolicy, graph: str = "full", steps: int | None = None) -> None:
    """Before an export: a diffusion policy's full graph samples with DDIM (eta = 0) whatever its sampler, over
    ``steps`` (default: its configured steps); its denoiser graph keeps its scheduler and records ``steps``.
    ``steps`` is an error for other policies."""
    if isinstance(policy, DiffusionPolicy):
        policy.set_sampler("ddim" if graph == "full" else None, steps)
    elif steps is not None:
        raise ValueError("--steps applies to diffusion policies")


def graph_info(policy: ChunkPolicy) -> dict:
    """What ``export.json`` records: input names, per-sample shapes and dtypes, output, sampler."""
    examples = example_inputs(policy)
    rows = zip(input_names(policy), examples, strict=True)
    return {
        "inputs": [{"name": n, "shape": ["B", *x.shape[1:]], "dtype": str(x.dtype).removeprefix("torch.")}
                   for n, x in rows],
        "output": {"name": "action", "shape": ["B", policy.cfg.n_action_steps, policy.cfg.action_dim]},
        "units": "physical (inputs and output)",
        "sampler": None if not isinstance(policy, DiffusionPolicy) else
        {"scheduler": "ddim", "eta": 0.0, "steps": policy.cfg.diffusion.num_inference_steps},
    }


def export_torchscript(policy: ChunkPolicy, path: str | Path) -> Path:
    """Trace ``policy``'s inference graph to a TorchScript file ``path`` (+ ``export.json`` beside it)."""
    graph = policy_graph(policy)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated but still the C++ path
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # norm layers' batch-size check (constant)
        traced = torch.jit.trace(graph, example_inputs(policy, batch=2), check_trace=False)
        traced.save(str(path))
    path.with_name("export.json").write_text(json.dumps(graph_info(policy), indent=2))
    return path


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """Load an exported graph (CPU)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")
