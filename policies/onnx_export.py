"""ONNX export of policy graphs, for onnxruntime, TensorRT and Isaac ROS (``pip install robolearn[export]``).

Three graphs, all on CPU, batch size free (``B`` is a symbolic dimension named ``batch``):

* :func:`export_policy_onnx`: the graph :mod:`robolearn.policies.export` traces to TorchScript, from
  physical inputs to physical outputs, what ``policy.infer`` computes. Inputs: one tensor per observation
  key in ``policy.keys`` order, ``(B, To, *shape)`` (state float32, images uint8), then for a diffusion
  policy the initial noise ``(B, Tp, Da)`` float32; output ``action`` ``(B, Ta, Da)`` float32, physical
  units. A diffusion policy's DDIM (eta = 0) loop is unrolled over its configured steps with the
  scheduler's coefficients as constants, so the graph equals ``act(obs, noise)``.
* :func:`export_denoiser_onnx`: a diffusion policy split for a caller that runs the scheduler loop
  itself (any diffusers scheduler, any step count): ``encoder.onnx`` maps the observation history
  (physical) to the conditioning ``cond (B, C)``; ``denoiser.onnx`` maps ``sample (B, Tp, Da)`` (normalized
  action units), ``timestep (B,)`` int64 and ``cond`` to ``prediction (B, Tp, Da)`` (noise or clean
  chunk, ``prediction_type``); ``denoiser.json`` holds the scheduler's diffusers config, the noise clip,
  ``Ta`` and the action unnormalization ``action = (x - offset) / scale``.
* :func:`export_onnx`: any ``nn.Module`` taking positional tensors, with named inputs and outputs; the
  two above are built on it (and so can other graphs, e.g. a base policy plus a residual actor).

Exporter: ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript). Both exporters give
graphs onnxruntime runs and matches torch with (once the U-Net's im2col convolutions export as ``Conv``,
see ``GemmConv1d``; the TorchScript-based exporter cannot export their ``unfold`` with a symbolic batch
size). That one (``dynamo=False``) is deprecated in torch 2.9+ ("the feature will be removed"), so a
graph built on it would break on a torch upgrade. The dynamo exporter is slower to export (seconds for
BC, a minute or more for an unrolled 10-step U-Net on a loaded CPU), paid once per deployment.
"""

from __future__ import annotations

import importlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import nn

from robolearn.policies.base import ChunkPolicy
from robolearn.policies.diffusion import DiffusionPolicy, make_scheduler
from robolearn.policies.export import example_inputs, graph_info, input_names, policy_graph

if TYPE_CHECKING:
    import onnxruntime

EXTRA = "pip install robolearn[export]"
BATCH = "batch"
"""Name of the symbolic batch dimension in exported graphs."""


def require(module: str) -> ModuleType:
    """Import an optional export dependency (``onnx``, ``onnxscript``, ``onnxruntime``) or say how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"ONNX export needs the '{module}' package: {EXTRA}") from err


def _check_fitted(policy: ChunkPolicy) -> None:
    if not bool(policy.normalizer.fitted):
        raise RuntimeError("export: the policy's normalizer has no statistics, so the graph would compute in the "
                           "wrong units; call set_stats() or load a checkpoint")


class _Positional(nn.Module):
    """Calls ``module(*inputs)``: one signature, so every graph's dynamic shapes take one form."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.module(*inputs)


def export_onnx(
    module: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: str | Path,
    dynamic_batch: bool = True,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export ``module(*example_inputs)`` (CPU, eval mode) to the ONNX file ``path``; returns ``path``.

    ``input_names`` / ``output_names`` name the graph's inputs and outputs in order. With
    ``dynamic_batch`` the first dimension of every input (and so of the outputs) is the symbolic
    ``batch``; give examples with a batch of at least 2 (torch.export specializes sizes 0 and 1).
    ``metadata`` lands in the model's ``metadata_props`` (onnxruntime: ``get_modelmeta()``).
    """
    require("onnx")
    require("onnxscript")
    inputs = tuple(example_inputs)
    if len(input_names) != len(inputs):
        raise ValueError(f"export_onnx: {len(inputs)} example inputs but {len(input_names)} input names")
    if dynamic_batch and any(x.dim() == 0 or x.shape[0] < 2 for x in inputs):
        raise ValueError("export_onnx: with dynamic_batch, every example input needs a batch dimension >= 2")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _Positional(module).cpu().eval()
    batch = torch.export.Dim(BATCH, min=1, max=1 << 20)
    shapes = (tuple({0: batch} for _ in inputs),) if dynamic_batch else None
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms", x4
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.export / onnxscript deprecation chatter, nothing actionable
            program = torch.onnx.export(
                graph, inputs, input_names=list(input_names), output_names=list(output_names),
                dynamic_shapes=shapes, dynamo=True, external_data=False, verbose=False,
            )
    finally:
        registry_log.setLevel(level)
    assert program is not None
    model = program.model_proto
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    return path


def export_policy_onnx(policy: ChunkPolicy, path: str | Path) -> Path:
    """Export ``policy``'s inference graph (see module docstring) to ``path``; ``<path>.json`` beside it.

    A diffusion policy must sample with DDIM (``set_sampler('ddim', steps)``); ``steps`` is baked in.
    """
    graph = policy_graph(policy)
    _check_fitted(policy)
    info = graph_info(policy) | {"format": "onnx"}
    path = export_onnx(graph, example_inputs(policy, batch=2), input_names(policy), ["action"], path,
                       metadata={"robolearn": json.dumps(info)})
    path.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return path


class EncoderGraph(nn.Module):
    """Observation history ``(B, To, *shape)`` per key (physical) -> conditioning ``(B, C)``."""

    def __init__(self, policy: ChunkPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        p = self.policy
        return p.encoder(p.normalize_obs(dict(zip(p.keys, inputs, strict=True))))


@dataclass(frozen=True)
class DenoiserFiles:
    """What :func:`export_denoiser_onnx` writes."""

    encoder: Path
    denoiser: Path
    info: Path


def denoiser_info(policy: DiffusionPolicy) -> dict:
    """``denoiser.json``: graph signatures, the scheduler to run and how to unnormalize its result."""
    d, cfg = policy.cfg.diffusion, policy.cfg
    sched = make_scheduler(d, d.scheduler)
    scale, offset = (t.detach().cpu().flatten().tolist() for t in policy.normalizer.affine("action"))
    obs = graph_info(policy)["inputs"][: len(policy.keys)]
    action = ["B", cfg.horizon, cfg.action_dim]
    return {
        "format": "onnx",
        "encoder": {"inputs": obs, "output": {"name": "cond", "shape": ["B", policy.encoder.out_dim]}},
        "denoiser": {
            "inputs": [{"name": "sample", "shape": action, "dtype": "float32", "units": "normalized action"},
                       {"name": "timestep", "shape": ["B"], "dtype": "int64"},
                       {"name": "cond", "shape": ["B", policy.encoder.out_dim], "dtype": "float32"}],
            "output": {"name": "prediction", "shape": action, "prediction_type": d.prediction_type},
        },
        "scheduler": {"class": type(sched).__name__, "config": json.loads(json.dumps(dict(sched.config),
                                                                                  default=str))},
        "num_inference_steps": d.num_inference_steps,
        "noise_clip": d.noise_clip,
        "n_action_steps": cfg.n_action_steps,
        "action_unnormalize": {"formula": "action = (x[:, :n_action_steps] - offset) / scale",
                               "scale": scale, "offset": offset},
    }


def export_denoiser_onnx(policy: DiffusionPolicy, directory: str | Path) -> DenoiserFiles:
    """Export a diffusion policy's encoder and denoiser as two graphs for a caller-run scheduler loop.

    Writes ``encoder.onnx``, ``denoiser.onnx`` and ``denoiser.json`` into ``directory`` (see the module
    docstring). The caller clips the initial noise ``(B, Tp, Da)`` to ``noise_clip``, steps the scheduler
    over ``timesteps`` with ``denoiser`` predictions, and unnormalizes the first ``Ta`` actions.
    """
    if not isinstance(policy, DiffusionPolicy):
        raise TypeError(f"export_denoiser_onnx needs a diffusion policy, got {type(policy).__name__}")
    _check_fitted(policy)
    directory = Path(directory)
    policy = policy.cpu().eval()
    obs = example_inputs(policy, batch=2)[: len(policy.keys)]
    info = denoiser_info(policy)
    meta = {"robolearn": json.dumps(info)}
    encoder = export_onnx(EncoderGraph(policy), obs, policy.keys, ["cond"], directory / "encoder.onnx",
                          metadata=meta)
    with torch.no_grad():
        cond = EncoderGraph(policy)(*obs)
    sample = torch.zeros((2, *policy.noise_shape))
    timestep = torch.zeros(2, dtype=torch.long)
    denoiser = export_onnx(policy.denoiser, (sample, timestep, cond), ["sample", "timestep", "cond"],
                           ["prediction"], directory / "denoiser.onnx", metadata=meta)
    info_path = directory / "denoiser.json"
    info_path.write_text(json.dumps(info, indent=2))
    return DenoiserFiles(encoder, denoiser, info_path)


def load_onnx(path: str | Path, threads: int = 1) -> onnxruntime.InferenceSession:
    """An ``onnxruntime.InferenceSession`` on the CPU for ``path``, ``threads`` intra-op threads (0: ORT's
    default). Inputs are numpy arrays by name: ``session.run(None, {name: array})``."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
