"""ONNX export of a refined residual policy: the frozen base's graph(s) plus one graph for the residual step.

What :func:`export_refined_onnx` writes into its output directory, for a runtime without robolearn:

* the base, exactly as :mod:`robolearn.policies.onnx_export` exports a base checkpoint: ``base.onnx`` +
  ``base.json`` (``graph="full"``: observation history ``(B, To, *shape)`` per base key, physical, + initial
  noise ``(B, Tp, Da)`` for diffusion -> chunk ``action`` ``(B, Ta, Da)``, physical; DDIM eta = 0 unrolled), or
  ``encoder.onnx`` + ``denoiser.onnx`` + ``denoiser.json`` (``graph="denoiser"``: the caller runs the
  scheduler loop). The noise is all zeros when the residual was trained on a zero-noise base
  (``params.base_noise: zero``, :class:`~robolearn.refine.noise_steering.ZeroNoisePolicy`), standard normal
  when ``random``; a BC base takes none.
* ``residual.onnx``, run once per control step (:class:`ResidualGraph`): inputs are the actor's observation
  keys in ``refined.yaml`` order, each ``(B, *shape)`` float32 (``uint8`` for ``pixels...`` images): the env's
  keys, ``base_action`` ``(B, Da)`` (the current base action, normalized) and, with ``plan_steps > 0``,
  ``base_plan`` ``(B, plan_steps * (Da + 1))``; then ``base_action_physical`` ``(B, Da)`` (the chunk's current
  action). Output ``action`` ``(B, Da)``: the executed physical action,
  ``clip(clip(base, low, high) + scale * half * tanh(actor(obs)), low, high)``, with the actor's observation
  standardisation (``ObsEncoder`` shift/scale buffers, clipped to ``+-OBS_CLIP``) inside the graph.
* ``refined.json``: the manifest: which file does what, input and output names, the scale, the action
  bounds, the normalization of ``base_action`` / ``base_plan``, the base noise mode and the control loop
  (see :func:`refined_manifest`); also in ``residual.onnx``'s ``metadata_props["robolearn"]``.

The loop the manifest spells out is :meth:`~robolearn.refine.residual.ResidualPolicy.act`: replan the base
every ``Ta`` steps (and after a reset) from the observation history, then per step feed the residual graph
the current observation and the chunk's current action. The other refinement methods act through the base's
sampling (DSRL and DSRL-NA choose its noise, V-GPS ranks its samples with a critic) or have no base (RLPD);
they are refused with a one-line error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robolearn.policies.base import ChunkPolicy
from robolearn.policies.diffusion import DiffusionPolicy
from robolearn.policies.export import set_export_sampler
from robolearn.policies.onnx_export import export_denoiser_onnx, export_onnx, export_policy_onnx
from robolearn.refine.noise_steering import ZeroNoisePolicy
from robolearn.refine.residual import BASE_KEY, PLAN_KEY, ResidualPolicy
from robolearn.rl.networks import OBS_CLIP, Actor, is_pixel_key

SUPPORTED = ("residual",)
"""Refinement methods :func:`export_refined_onnx` exports."""
FORMAT = "robolearn.refined-onnx/1"
BASE_PHYSICAL = "base_action_physical"
"""Name of the residual graph's physical base-action input."""
RESIDUAL_FILE, MANIFEST_FILE = "residual.onnx", "refined.json"


class ResidualGraph(nn.Module):
    """Actor observation ``(B, *shape)`` per key + physical base action ``(B, Da)`` -> executed action ``(B, Da)``.

    The arithmetic of :meth:`ResidualPolicy.act` for one step: the base action is clipped to the bounds, the
    actor's deterministic action ``tanh(mean)`` is scaled by ``scale * half`` (physical units) and added, and
    the sum is clipped to the bounds again.
    """

    def __init__(self, actor: Actor, keys: Sequence[str], low: np.ndarray, high: np.ndarray, gain: np.ndarray) -> None:
        super().__init__()
        self.actor, self.keys = actor, list(keys)
        self.register_buffer("low", torch.as_tensor(np.asarray(low, np.float32)))
        self.register_buffer("high", torch.as_tensor(np.asarray(high, np.float32)))
        self.register_buffer("gain", torch.as_tensor(np.asarray(gain, np.float32)))

    def clip(self, action: torch.Tensor) -> torch.Tensor:
        """``(B, Da)`` clipped to ``[low, high]`` per dimension (``np.clip``'s order: max, then min)."""
        return torch.minimum(torch.maximum(action, self.low), self.high)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        obs = dict(zip(self.keys, inputs[:-1], strict=True))
        base = self.clip(inputs[-1].float())
        residual = torch.tanh(self.actor(obs)[0])
        return self.clip(base + self.gain * residual)


def residual_graph(policy: ResidualPolicy, obs_shapes: Mapping[str, Sequence[int]]) -> ResidualGraph:
    """The :class:`ResidualGraph` of ``policy``'s actor, bounds and scale (CPU, eval mode), its observation
    inputs in ``obs_shapes`` order."""
    gain = policy.scale * policy.scaler.half  # numpy float32, as act() computes it
    keys = list(actor_shapes(policy.actor, obs_shapes))
    return ResidualGraph(policy.actor, keys, policy.scaler.low, policy.scaler.high, gain).cpu().eval()


def actor_shapes(actor: Actor, obs_shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """``obs_shapes`` (the actor's observation keys and per-sample shapes, ``refined.yaml``'s) as tuples,
    checked against the actor's encoder: the keys it reads and the state width it was built for."""
    shapes = {k: tuple(int(d) for d in s) for k, s in obs_shapes.items()}
    enc = actor.encoder
    state = sum(int(np.prod(s)) for k, s in shapes.items() if not is_pixel_key(k, s))
    if sorted(shapes) != sorted(enc.state_keys + enc.pixel_keys) or state != enc.state_dim:
        raise ValueError(
            f"export: obs_shapes {shapes} do not fit the actor (state keys {enc.state_keys}, "
            f"{enc.state_dim} features; pixel keys {enc.pixel_keys})"
        )
    return shapes


def residual_example_inputs(
    shapes: Mapping[str, Sequence[int]], action_dim: int, batch: int = 2
) -> tuple[torch.Tensor, ...]:
    """Zero inputs of the residual graph: ``(batch, *shape)`` per actor key, then ``(batch, Da)``."""
    inputs = [
        torch.zeros((batch, *s), dtype=torch.uint8 if is_pixel_key(k, s) else torch.float32) for k, s in shapes.items()
    ]
    return (*inputs, torch.zeros((batch, action_dim)))


def residual_info(policy: ResidualPolicy, obs_shapes: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """The residual graph's entry of the manifest: file, inputs (name, shape, dtype, units), output, the
    correction's formula and scale."""
    shapes, da = actor_shapes(policy.actor, obs_shapes), len(policy.scale)
    units = {BASE_KEY: "normalized base action", PLAN_KEY: "normalized base plan"}
    inputs = [
        {
            "name": k,
            "shape": ["B", *s],
            "dtype": "uint8" if is_pixel_key(k, s) else "float32",
            "units": units.get(k, "physical (env observation)"),
        }
        for k, s in shapes.items()
    ]
    inputs.append(
        {
            "name": BASE_PHYSICAL,
            "shape": ["B", da],
            "dtype": "float32",
            "units": "physical (the base chunk's current action)",
        }
    )
    return {
        "file": RESIDUAL_FILE,
        "inputs": inputs,
        "output": {"name": "action", "shape": ["B", da], "dtype": "float32", "units": "physical (execute it)"},
        "formula": f"action = clip(clip({BASE_PHYSICAL}, low, high) + scale * half * tanh(actor(obs)), low, high)",
        "scale": f32_list(policy.scale),
        "plan_steps": policy.plan_steps,
        "obs_standardisation": f"inside the graph: clip((x - shift) / scale, -{OBS_CLIP}, {OBS_CLIP})",
    }


def export_residual_onnx(
    policy: ResidualPolicy,
    obs_shapes: Mapping[str, Sequence[int]],
    path: str | Path,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export ``policy``'s residual step (:class:`ResidualGraph`) to the ONNX file ``path``; returns it.

    ``obs_shapes`` are the actor's observation keys and shapes (``refined.yaml``'s, or the wrapper's
    ``obs_shapes``); they name the graph's inputs, in order, then ``base_action_physical``. The base is not
    part of this graph, so any base works, a named one included. ``metadata`` goes to ``metadata_props``.
    """
    shapes = actor_shapes(policy.actor, obs_shapes)
    inputs = residual_example_inputs(shapes, len(policy.scale))
    return export_onnx(
        residual_graph(policy, shapes), inputs, [*shapes, BASE_PHYSICAL], ["action"], path, metadata=metadata
    )


def base_network(policy: ResidualPolicy) -> tuple[ChunkPolicy, str]:
    """The residual's base checkpoint policy and how it samples (``zero``: from zero noise, ``random``: from
    its noise prior, ``none``: a deterministic base); a ValueError for a base without a checkpoint."""
    base, mode = policy.base, "random"
    if isinstance(base, ZeroNoisePolicy):
        base, mode = base.base, "zero"
    if not isinstance(base, ChunkPolicy):
        raise ValueError(
            f"export: the residual's base is a {type(base).__name__}, not a trained checkpoint; "
            "ONNX export needs a BC or diffusion base (robolearn train)"
        )
    return base, mode if isinstance(base, DiffusionPolicy) else "none"


def export_base(base: ChunkPolicy, directory: Path, graph: str, steps: int | None) -> dict[str, Any]:
    """Export ``base`` into ``directory`` as ``robolearn export`` would (``graph`` ``full``: ``base.onnx`` +
    ``base.json``; ``denoiser``: ``encoder.onnx`` + ``denoiser.onnx`` + ``denoiser.json``); returns the
    manifest's ``files`` for it (role -> file name)."""
    set_export_sampler(base, graph, steps)
    if graph == "denoiser":
        if not isinstance(base, DiffusionPolicy):
            raise ValueError("--graph denoiser needs a diffusion base")
        files = export_denoiser_onnx(base, directory)
        return {"encoder": files.encoder.name, "denoiser": files.denoiser.name, "info": files.info.name}
    if graph != "full":
        raise ValueError(f"unknown graph '{graph}'; choose full or denoiser")
    path = export_policy_onnx(base, directory / "base.onnx")
    return {"graph": path.name, "info": path.with_suffix(".json").name}


def f32_list(values: np.ndarray) -> list[float]:
    """``float32`` values ``(N,)`` as the shortest decimals that read back to the same ``float32`` (``0.2``, not
    ``0.20000000298023224``)."""
    return [float(np.format_float_positional(v, unique=True, trim="-")) for v in np.asarray(values, np.float32)]


def action_info(policy: ResidualPolicy) -> dict[str, Any]:
    """The manifest's ``action``: bounds, and how the runtime normalizes the base chunk for the actor."""
    s = policy.scaler
    return {
        "dim": len(s.low),
        "low": f32_list(s.low),
        "high": f32_list(s.high),
        "center": f32_list(s.center),
        "half": f32_list(s.half),
        "normalize": "a_norm = clip((clip(a, low, high) - center) / half, -1, 1), per dimension",
    }


def base_info(base: ChunkPolicy, mode: str, graph: str, files: dict[str, str]) -> dict[str, Any]:
    """The manifest's ``base``: its files, observation keys, history and chunk lengths, and its noise."""
    cfg = base.cfg
    noise = None
    if isinstance(base, DiffusionPolicy):
        noise = {
            "input": "noise" if graph == "full" else "the scheduler loop's initial sample",
            "shape": ["B", *base.noise_shape],
            "mode": mode,
            "value": "zeros" if mode == "zero" else "standard normal, drawn at every replan",
        }
    return {
        "graph": graph,
        "files": files,
        "keys": list(base.keys),
        "n_obs_steps": cfg.n_obs_steps,
        "n_action_steps": cfg.n_action_steps,
        "output": {"name": "action", "shape": ["B", cfg.n_action_steps, cfg.action_dim], "units": "physical"}
        if graph == "full"
        else "the caller's scheduler loop, unnormalized as denoiser.json says",
        "noise": noise,
    }


def loop_steps(plan_steps: int) -> list[str]:
    """The control loop a runtime runs over the graphs (``ResidualPolicy.act``), one line per step."""
    steps = [
        "every control step: append the observation to the base's history (the last n_obs_steps per base key; "
        "after a reset the first observation fills it)",
        "after a reset, or when the chunk's n_action_steps actions are used up: run the base on the history "
        "(+ noise) -> chunk (B, Ta, Da), physical; i = 0",
        f"{BASE_KEY} = normalize(chunk[:, i]) (action.normalize)",
    ]
    if plan_steps:
        steps.append(
            f"{PLAN_KEY}: for r in 0..{plan_steps - 1}: normalize(chunk[:, i + 1 + r]) followed by 1, or "
            "Da + 1 zeros where i + 1 + r >= Ta; flattened to (B, plan_steps * (Da + 1))"
        )
    steps.append(
        f"run {RESIDUAL_FILE} on the observation's env keys, the base inputs above and "
        f"{BASE_PHYSICAL} = chunk[:, i] -> action (B, Da); execute it; i += 1"
    )
    return steps


def refined_manifest(policy: ResidualPolicy, meta: Any, mode: str, base: dict[str, Any]) -> dict[str, Any]:
    """``refined.json``: what each exported file does and how a runtime chains them (``meta``: the
    directory's ``RefinedMeta``; ``mode``: the base's noise; ``base``: :func:`base_info`)."""
    return {
        "format": FORMAT,
        "method": meta.method,
        "env_id": meta.env_id,
        "base_spec": meta.base,
        "base_noise": mode,
        "action": action_info(policy),
        "base": base,
        "residual": residual_info(policy, meta.obs_shapes),
        "loop": loop_steps(policy.plan_steps),
    }


def check_method(method: str | None) -> None:
    """A one-line ValueError unless refinement ``method`` is one this module exports (:data:`SUPPORTED`)."""
    if method not in SUPPORTED:
        raise ValueError(
            f"refined method '{method}' has no ONNX export; supported: refined "
            f"{', '.join(SUPPORTED)} policies and base checkpoints (BC, diffusion)"
        )


def export_refined_onnx(
    directory: str | Path, out: str | Path, graph: str = "full", steps: int | None = None
) -> list[Path]:
    """Export the refined-policy ``directory`` (``refined.yaml`` + ``actor.pt``) to ONNX graphs in the
    directory ``out`` (see the module docstring); returns the files written.

    ``graph`` and ``steps`` choose the base's export as for a base checkpoint (``full``: DDIM over ``steps``,
    default the checkpoint's; ``denoiser``: encoder + denoiser for a caller-run scheduler loop). Only
    :data:`SUPPORTED` methods export; the base must be a checkpoint (BC or diffusion), not a named policy.
    """
    from robolearn.policy_factory import load_refined
    from robolearn.refine.saved import read_refined

    meta = read_refined(directory)
    check_method(meta.method)
    policy = load_refined(directory)
    assert isinstance(policy, ResidualPolicy)
    base, mode = base_network(policy)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base_files = export_base(base, out, graph, steps)
    manifest = refined_manifest(policy, meta, mode, base_info(base, mode, graph, base_files))
    residual = export_residual_onnx(
        policy, meta.obs_shapes, out / RESIDUAL_FILE, metadata={"robolearn": json.dumps(manifest)}
    )
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return [out / name for name in base_files.values()] + [residual, out / MANIFEST_FILE]
