"""``robolearn export``: a policy checkpoint to a deployable graph file (ONNX or TorchScript)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("Export a policy checkpoint (or run directory) to ONNX or TorchScript, or a refined residual policy to "
        "ONNX graphs, physical units in and out.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True,
                        help="checkpoint directory, run directory (runs/<run>) or refined residual policy directory "
                             "(refined.yaml: base graph(s) + residual.onnx + refined.json into the --out directory)")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                        help="onnx (onnxruntime, TensorRT, Isaac ROS; needs robolearn[export]) or torchscript")
    parser.add_argument("--out", required=True,
                        help="output file (.onnx / .pt); a directory for --graph denoiser or a refined policy")
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
    from robolearn.refine.layout import refined_method

    method = refined_method(policy_dir)
    if method is not None:
        return export_refined(policy_dir, method, fmt, out, steps, graph)
    from robolearn.policies import checkpoint
    from robolearn.policies.diffusion import DiffusionPolicy
    from robolearn.policies.export import export_torchscript, set_export_sampler

    policy = checkpoint.load(policy_dir)
    set_export_sampler(policy, graph, steps)
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


def export_refined(policy_dir: str | Path, method: str, fmt: str, out: str | Path, steps: int | None = None,
                   graph: str = "full") -> list[Path]:
    """A refined residual policy directory (refinement ``method``) to ONNX graphs in the directory ``out`` (the
    base's, as for its checkpoint, plus ``residual.onnx`` and the manifest ``refined.json``); returns the
    files written. Other methods are a one-line error naming what exports."""
    from robolearn.refined_export import check_method, export_refined_onnx

    check_method(method)
    if fmt != "onnx":
        raise ValueError("a refined residual policy exports to onnx only (--format onnx)")
    return export_refined_onnx(policy_dir, out, graph, steps)


def run(args: argparse.Namespace) -> int:
    try:
        files = export_checkpoint(args.policy, args.format, args.out, args.steps, args.graph)
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f"robolearn export: {err}", file=sys.stderr)
        return 2
    for path in files:
        print(f"wrote {path}")
    return 0
