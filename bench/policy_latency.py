"""Per-chunk inference latency of the base policies on this machine's CPU.

For the diffusion policy with the U-Net and the MLP denoiser, measures ``policy.act`` (history update,
normalization, encoder, DDIM denoising loop, unnormalization, numpy out) at batch 1 and 64 and at
1, 3, 10, 16 and 100 denoising steps; then the one-pass floor: the same encoder and denoiser called
once, without diffusion (what a non-generative policy of the same network costs), and the BC policy.
Reports medians, parameter counts and the ratio of 10 steps to the floor. ``ts10`` is the same policy
exported to TorchScript (:func:`robolearn.policies.export.export_torchscript`: the 10-step DDIM loop
unrolled into one traced graph, no Python per step), the deployment path; ``ort10`` is the same graph
exported to ONNX (:func:`robolearn.policies.onnx_export.export_policy_onnx`) and run by onnxruntime on
the same number of threads. ``act`` at 10 steps, ``ts10`` and ``ort10`` are timed in interleaved rounds
(each round calls each once, in rotating order), so load changes hit all three alike; their min and
median and the ratios of those are reported (``ort/ts``, ``ort/act``). The ``residual`` row is one control
step of a refined residual policy beyond its base (a TD3 actor of the presets' size, ``[256, 256]``, on the
same state plus ``base_action``, over a base that costs nothing): ``ResidualPolicy.act``, the residual graph
of :func:`robolearn.refined_export.export_residual_onnx` traced to TorchScript, and that graph in
onnxruntime (a deployment adds its base's row every ``Ta`` steps). The machine's load average
is printed with the figures: on a shared CPU, medians grow with it, and more than one torch thread
makes it worse (OpenMP workers spin-wait on cores that other processes hold).

    python bench/policy_latency.py [--threads 1] [--repeats 30] [--json out.json] [--no-onnx]

(with robolearn installed, ``pip install -e .``; from a bare checkout prefix ``PYTHONPATH=.``; the ONNX
column needs ``pip install robolearn[export]`` and is left out, with a note, without it)

Observation layout is PandaLift's state (To=2, Tp=16, Ta=8, Da=5); weights are random (latency does
not depend on them).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from robolearn.policies.checkpoint import make_policy
from robolearn.policies.configuration import DiffusionConfig, PolicyConfig
from robolearn.policies.export import example_inputs, export_torchscript, load_torchscript
from robolearn.policy_factory import ZeroPolicy
from robolearn.refine.residual import BASE_KEY, ResidualPolicy
from robolearn.refined_export import export_residual_onnx, residual_example_inputs, residual_graph
from robolearn.rl.networks import Actor

OBS_SHAPES = {"joint_pos": [7], "joint_vel": [7], "ee_pos": [3], "ee_quat": [4], "gripper": [1],
              "object_pos": [3], "object_quat": [4]}
STEPS = (1, 3, 10, 16, 100)
BATCHES = (1, 64)


VARIANTS = {"unet": {"denoiser": "unet"}, "unet-small": {"denoiser": "unet", "unet_channels": [32, 64, 128]},
            "mlp": {"denoiser": "mlp"}, "mlp-256": {"denoiser": "mlp", "mlp_hidden_dim": 256}}
"""Variant name -> DiffusionConfig fields (``unet`` and ``mlp`` are the defaults; ``mlp-256`` is the fast
preset's denoiser, ``configs/bc/panda_lift_diffusion_fast.yaml``)."""


def config(kind: str, variant: str = "unet") -> PolicyConfig:
    diffusion = DiffusionConfig(num_train_timesteps=100, **VARIANTS[variant])
    return PolicyConfig(type=kind, obs_shapes=OBS_SHAPES, action_dim=5, n_obs_steps=2, horizon=16,
                        n_action_steps=8, diffusion=diffusion)


def stats() -> dict:
    keys = {**OBS_SHAPES, "action": [5]}
    return {k: {"min": -np.ones(s), "max": np.ones(s), "mean": np.zeros(s), "std": np.ones(s)} for k, s in keys.items()}


def observation(batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.uniform(-1, 1, (batch, *s)).astype(np.float32) for k, s in OBS_SHAPES.items()}


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 3) -> dict[str, dict]:
    """Each of ``fns`` called once per round, the order rotating by one each round (a load burst hits
    all alike); ``{name: {"min": ms, "median": ms}}``."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    return {n: {"min": 1000 * min(v), "median": 1000 * statistics.median(v)} for n, v in times.items()}


def one_pass(policy, batch: int) -> Callable[[], object]:
    """Encoder + a single denoiser forward pass, no sampler: the floor of any policy on this network."""
    history = {k: torch.as_tensor(v)[:, None].repeat_interleave(2, 1) for k, v in observation(batch).items()}
    x = torch.zeros(batch, 16, 5)
    t = torch.zeros(batch, dtype=torch.long)

    def run():
        with torch.inference_mode():
            cond = policy.encoder(policy.normalize_obs(history))
            return policy.inference_denoiser(x, cond)(x, t, cond)  # as sampling runs it (traced)

    return run


def onnx_available() -> bool:
    """Whether the ONNX export extra is installed (``pip install robolearn[export]``)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))


def exported(policy, steps: int, directory: Path) -> torch.jit.ScriptModule:
    """``policy`` with DDIM ``steps`` exported to TorchScript and loaded back."""
    policy.set_sampler("ddim", steps)
    return load_torchscript(export_torchscript(policy, directory / "policy.pt"))


def onnx_runner(policy, directory: Path, with_onnx: bool) -> Callable[[int], Callable[[], object]] | None:
    """``batch -> call`` running ``policy``'s exported ONNX graph (its sampler as set) in onnxruntime on
    torch's thread count; None without ``with_onnx``."""
    if not with_onnx:
        return None
    from robolearn.policies.onnx_export import export_policy_onnx, load_onnx

    session = load_onnx(export_policy_onnx(policy, directory / "policy.onnx"), torch.get_num_threads())
    names = [i.name for i in session.get_inputs()]

    def call(batch: int) -> Callable[[], object]:
        feed = {n: x.numpy() for n, x in zip(names, example_inputs(policy, batch), strict=True)}
        return lambda: session.run(None, feed)

    return call


def deploy_row(policy, batch: int, graph, ort, repeats: int) -> dict:
    """``act`` at the policy's current sampler, TorchScript and (with ``ort``) onnxruntime, interleaved."""
    obs, inputs = observation(batch), example_inputs(policy, batch)

    def ts() -> object:
        with torch.inference_mode():
            return graph(*inputs)

    fns = {"act": lambda: policy.act(obs), "ts": ts} | ({"ort": ort(batch)} if ort else {})
    return interleaved_ms(fns, repeats)


def residual_policy() -> tuple[ResidualPolicy, dict[str, tuple[int, ...]]]:
    """A residual of the presets' size over the zero policy, whose ``(B, 1, Da)`` chunks cost nothing (``act``
    replans it every step), and the actor's observation shapes."""
    space = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
    shapes = {k: tuple(s) for k, s in OBS_SHAPES.items()} | {BASE_KEY: (5,)}
    actor = Actor(shapes, 5, [256, 256], stochastic=False).eval()
    return ResidualPolicy(ZeroPolicy(space), actor, space, 0.1), shapes


def residual_row(repeats: int, with_onnx: bool) -> dict:
    """One residual step: ``act``, the traced residual graph and (``with_onnx``) onnxruntime, interleaved."""
    policy, shapes = residual_policy()
    graph = residual_graph(policy, shapes)
    session = None
    if with_onnx:
        from robolearn.policies.onnx_export import load_onnx

        with tempfile.TemporaryDirectory() as tmp:
            session = load_onnx(export_residual_onnx(policy, shapes, Path(tmp) / "r.onnx"), torch.get_num_threads())
    cells = {}
    for batch in BATCHES:
        obs, inputs = observation(batch), residual_example_inputs(shapes, 5, batch)
        with torch.no_grad():
            traced = torch.jit.trace(graph, inputs, check_trace=False)
        feed = {n: x.numpy() for n, x in zip([*shapes, "base_action_physical"], inputs, strict=True)}

        def ts(traced=traced, inputs=inputs) -> object:
            with torch.inference_mode():
                return traced(*inputs)

        fns = {"act": lambda obs=obs: policy.act(obs), "ts": ts}
        if session is not None:
            fns["ort"] = lambda feed=feed: session.run(None, feed)
        cells[batch] = interleaved_ms(fns, repeats)
    return {"params": sum(p.numel() for p in policy.actor.parameters()), "deploy_ms": cells}


def measure(repeats: int, variants: list[str], with_onnx: bool) -> dict:
    results: dict = {"threads": torch.get_num_threads(), "load_avg": os.getloadavg(), "variants": {}}
    for variant in variants:
        policy = make_policy(config("diffusion", variant)).eval()
        policy.set_stats(stats())
        row = {"params": sum(p.numel() for p in policy.parameters()), "act_ms": {}, "floor_ms": {},
               "deploy10_ms": {}}
        with tempfile.TemporaryDirectory() as tmp:
            graph = exported(policy, 10, Path(tmp))
            ort = onnx_runner(policy, Path(tmp), with_onnx)
        for batch in BATCHES:
            row["floor_ms"][batch] = median_ms(one_pass(policy, batch), repeats)
            policy.set_sampler("ddim", 10)
            row["deploy10_ms"][batch] = deploy_row(policy, batch, graph, ort, repeats)
            obs = observation(batch)
            for steps in STEPS:
                policy.set_sampler("ddim", steps)
                n = repeats if steps <= 16 else max(repeats // 5, 3)
                row["act_ms"][f"{batch}x{steps}"] = median_ms(lambda p=policy, o=obs: p.act(o), n)
        results["variants"][variant] = row
    bc = make_policy(config("bc")).eval()
    bc.set_stats(stats())
    with tempfile.TemporaryDirectory() as tmp:
        graph = load_torchscript(export_torchscript(bc, Path(tmp) / "bc.pt"))
        ort = onnx_runner(bc, Path(tmp), with_onnx)
    results["bc"] = {"params": sum(p.numel() for p in bc.parameters()),
                     "deploy_ms": {b: deploy_row(bc, b, graph, ort, repeats) for b in BATCHES}}
    results["residual"] = residual_row(repeats, with_onnx)
    return results


def deploy_lines(name: str, batch: int, cell: dict) -> str:
    """One row of the interleaved table: min / median per path, then the ratios of mins and of medians."""
    paths = [p for p in ("act", "ts", "ort") if p in cell]
    parts = [f"{cell[p]['min']:7.2f} /{cell[p]['median']:7.2f}" for p in paths]
    for num, den in (("ort", "ts"), ("ort", "act")):
        if num in cell:
            lo, mid = (cell[num][k] / cell[den][k] for k in ("min", "median"))
            parts.append(f"{lo:6.2f} /{mid:5.2f}")
    return f"{name:10s} {batch:5d}  " + "  ".join(parts)


def report(results: dict) -> str:
    load = ", ".join(f"{x:.2f}" for x in results["load_avg"])
    lines = [f"policy chunk latency, ms (median), torch threads = {results['threads']}, DDIM eta=0, "
             f"load average {load}"]
    lines.append("variant      params  batch  floor  " + "  ".join(f"{s:>6d}st" for s in STEPS) + "  10st/floor")
    for name, row in results["variants"].items():
        for batch in BATCHES:
            acts = [row["act_ms"][f"{batch}x{s}"] for s in STEPS]
            floor = row["floor_ms"][batch]
            lines.append(f"{name:10s} {row['params'] / 1e6:6.2f}M  {batch:5d}  {floor:5.2f}  "
                         + "  ".join(f"{a:8.2f}" for a in acts) + f"  {row['act_ms'][f'{batch}x10'] / floor:9.1f}x")
    head = [f"{h:>16s}" for h in ("act", "ts10", "ort10")] + [f"{h:>13s}" for h in ("ort/ts", "ort/act")]
    lines += ["", "deployment paths, 10 DDIM steps (bc: one pass; residual: one step beyond its base), interleaved "
              "rounds: act (Python), ts10 "
              "(TorchScript), ort10 (onnxruntime), ms min / median; ratios of mins / of medians",
              "variant    batch  " + "  ".join(head)]
    for name, row in results["variants"].items():
        lines += [deploy_lines(name, b, row["deploy10_ms"][b]) for b in BATCHES]
    lines += [deploy_lines("bc", b, results["bc"]["deploy_ms"][b]) for b in BATCHES]
    lines += [deploy_lines("residual", b, results["residual"]["deploy_ms"][b]) for b in BATCHES]
    verdict = lambda ms: "met" if ms < 20 else "MISSED"  # noqa: E731
    for name, row in results["variants"].items():
        cell = row["deploy10_ms"][1]
        paths = {"act": "act", "ts": "TorchScript", "ort": "onnxruntime"}
        lines.append(f"target {name}, 10 DDIM steps, batch 1 < 20 ms (median): " + "; ".join(
            f"{label} {cell[p]['median']:.2f} ms -> {verdict(cell[p]['median'])}" for p, label in paths.items()
            if p in cell))
    if not any("ort" in row["deploy10_ms"][1] for row in results["variants"].values()):
        lines.append("onnxruntime column left out (--no-onnx, or: pip install robolearn[export])")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per setting")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS),
                        help="diffusion denoisers to measure")
    parser.add_argument("--no-onnx", action="store_true", help="leave out the onnxruntime column")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    results = measure(args.repeats, args.variants, not args.no_onnx and onnx_available())
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
