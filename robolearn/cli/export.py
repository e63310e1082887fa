"""``robolearn export``: a policy checkpoint to a deployable graph file (ONNX or TorchScript)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Export a policy checkpoint (or run directory) to ONNX or TorchScript, physical units in and out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint directory or run directory (runs/<run>)")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                        help="onnx (onnxruntime, TensorRT, Isaac ROS; needs robolearn[export]) or torchscript")
    parser.add_argument("--out", required=True,
                        help="output file (.onnx / .pt); a directory for --graph denoiser")
    parser.add_argument("--steps", type=int,
                        help="diffusion: DDIM steps unrolled into the full graph, or the steps recorded for "
                             "the caller's loop with --graph denoiser (default: the checkpoint's)")
    parser.add_argument("--graph", choices=["full", "denoiser"], default="full",
                        help="full: observation (+ noise) -> action chunk; denoiser (diffusion, onnx): "
                             "encoder.onnx + denoiser.onnx for a scheduler loop run by the caller")


def export_checkpoint(policy_dir: str | Path, fmt: str, out: str | Path, steps: int | None = None,
                      graph: str = "full") -> list[Path]:
    """Load ``policy_dir`` and export it; returns the files written (graphs and their JSON).

    The full graph of a diffusion policy samples with DDIM (eta = 0) whatever the checkpoint's sampler;
    the denoiser graph records the checkpoint's scheduler for the caller's loop."""
    from robolearn.policies import checkpoint
    from robolearn.policies.diffusion import DiffusionPolicy
    from robolearn.policies.export import export_torchscript

    policy = checkpoint.load(policy_dir)
    if isinstance(policy, DiffusionPolicy):
        policy.set_sampler("ddim" if graph == "full" else None, steps)
    elif steps is not None:
        raise ValueError("--steps applies to diffusion policies")
    if graph == "denoiser":
        if fmt != "onnx" or not isinstance(policy, DiffusionPolicy):
            raise ValueError("--graph denoiser exports a diffusion policy to onnx")
        from robolearn.policies.onnx_export import export_denoiser_onnx

        files = export_denoiser_onnx(policy, out)
        return [files.encoder, files.denoiser, files.info]
    if fmt == "torchscript":
        path = export_torchscript(policy, out)
        return [path, path.with_name("export.json")]
    from robolearn.policies.onnx_export import export_policy_onnx

    path = export_policy_onnx(policy, out)
    return [path, path.with_suffix(".json")]


def run(args: argparse.Namespace) -> int:
    try:
        files = export_checkpoint(args.policy, args.format, args.out, args.steps, args.graph)
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f"robolearn export: {err}", file=sys.stderr)
        return 2
    for path in files:
        print(f"wrote {path}")
    return 0
