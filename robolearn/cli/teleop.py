"""``robolearn teleop``: drive a robot with a keyboard, gamepad or SpaceMouse and record episodes."""

from __future__ import annotations

import argparse

from robolearn.core.config import describe, load_config
from robolearn.rl.threads import set_torch_threads
from robolearn.teleop.devices import DEVICES
from robolearn.teleop.record import TeleopConfig, record_teleop

HELP = "Teleoperate a task (keyboard, gamepad, SpaceMouse) and record episodes with intervention flags."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML preset with TeleopConfig keys")
    parser.add_argument("--env", help="env id")
    parser.add_argument("--device", choices=list(DEVICES))
    parser.add_argument("--out", help="dataset directory (appended to when it exists)")
    parser.add_argument("--policy", help="base policy to correct (human-in-the-loop); default: none")
    parser.add_argument("--episodes", type=int, help="stop after N saved episodes")
    parser.add_argument("--camera", action="append", help="record this camera as pixels/<camera>")
    parser.add_argument("--viewer", choices=["auto", "on", "off"])
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. max_step=0.005")
    from robolearn.teleop.keyboard import __doc__ as keys

    parser.epilog = "config keys:\n" + "\n".join(describe(TeleopConfig)) + "\n\nkeyboard:" + (keys or "")


def run(args: argparse.Namespace) -> int:
    flags = {"env_id": args.env, "device": args.device, "out": args.out, "policy": args.policy,
             "episodes": args.episodes, "viewer": args.viewer,
             "cameras": f"[{','.join(args.camera)}]" if args.camera else None}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    set_torch_threads()  # one torch thread: the policy shares the cores with MuJoCo
    cfg = load_config(TeleopConfig, args.config, overrides + list(args.overrides))
    result = record_teleop(cfg)
    print(f"\n{cfg.out}: saved {result.committed} episodes ({result.successes} successful), "
          f"discarded {result.discarded}; {result.intervention_steps}/{result.steps} steps under human control")
    return 0
