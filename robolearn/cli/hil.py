"""``robolearn hil``: a person (or a simulated one) corrects a base policy; the corrections train it."""

from __future__ import annotations

import argparse
from typing import Any

from robolearn.core.config import ConfigError, describe, load_run_config
from robolearn.hil.config import DEVICES, HILConfig
from robolearn.hil.modes import MODES

HELP = "Human-in-the-loop refinement (hil-serl, rlif, hg-dagger) with a teleop device or a simulated human."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML preset (see configs/hil/)")
    parser.add_argument("--env", help="env id")
    parser.add_argument("--base", help="base policy: checkpoint / refined dir, or expert:noise=X")
    parser.add_argument("--mode", choices=list(MODES), help="what the corrections teach")
    parser.add_argument("--device", choices=list(DEVICES), help="who intervenes")
    parser.add_argument("--steps", type=int, help="total env steps (total_env_steps)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--split", action="store_true", help="run the learner in its own process")
    parser.add_argument("--run-dir", help="run directory (default runs/hil-<mode>-<task>-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. sim_human.noise=0.3")
    parser.epilog = ("config keys:\n" + "\n".join(describe(HILConfig)) + "\n\nteleop devices: hold a motion key / "
                     "stick to take over; y / n label the episode a success / failure; Q quits.")


def build_config(args: argparse.Namespace) -> HILConfig:
    flags = {"env_id": args.env, "base": args.base, "mode": args.mode, "device": args.device,
             "total_env_steps": args.steps, "seed": args.seed, "split": True if args.split else None}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    if args.device and args.device != "sim-human":  # one robot, at its control rate
        overrides = ["num_envs=1", "realtime=true", *overrides]
    cfg = load_run_config(HILConfig, args.config, overrides, args.run_dir, args.resume)
    try:
        cfg.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return cfg


def teleop_intervener(cfg: HILConfig, source: Any = None) -> tuple[Any, Any]:
    """A keyboard / gamepad / SpaceMouse intervener and its success labeller (y / n keys, buttons)."""
    from robolearn.hil.intervention import success_labeler_from_events
    from robolearn.hil.sim_human import TeleopIntervener
    from robolearn.teleop.base import EEDeltaMapping
    from robolearn.teleop.devices import make_device

    intervener = TeleopIntervener(make_device(cfg.device, EEDeltaMapping(), source))
    return intervener, success_labeler_from_events(intervener.take_events)


def run(args: argparse.Namespace) -> int:
    import torch

    from robolearn.hil.run import run_hil
    from robolearn.teleop.session import terminal_status
    from robolearn.wiring import hil_sources

    torch.set_num_threads(1)
    cfg = build_config(args)
    intervener = labeler = None
    if cfg.device != "sim-human":
        intervener, labeler = teleop_intervener(cfg)
    stop = (lambda: intervener.quit) if intervener is not None else None
    try:
        result = run_hil(cfg, hil_sources(cfg), run_dir=args.run_dir, resume=args.resume, intervener=intervener,
                         labeler=labeler, status=terminal_status, should_stop=stop)
    finally:
        if intervener is not None:
            intervener.device.close()
    print()
    for row in result.evals:
        print(f"  env steps {row['env_steps']:>7d}: policy alone success {row['success_rate']:.3f}")
    rate = result.intervention_steps / max(result.env_steps, 1)
    print(f"{result.env_steps} env steps, {result.episodes} episodes ({result.successes} successful), "
          f"{result.takeovers} takeovers, {rate:.1%} of steps under human control, {result.updates} updates, "
          f"{result.wall_s:.0f} s")
    for fault in result.faults:
        print(f"  learner fault: {fault.splitlines()[0]}")
    print(f"  run dir: {result.run_dir} (dataset: {result.run_dir}/dataset, policy: {result.run_dir}/policy)")
    return 0
