"""``robolearn launch``: start a ROS 2 node graph (robot twin, policy, safety...) and report its episodes."""

from __future__ import annotations

import argparse
from pathlib import Path

from robolearn.core.config import describe, load_config

HELP = "Start a ROS 2 node graph from configs/deploy/*.yaml (needs the ros extra); Ctrl-C stops it cleanly."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="deploy preset, e.g. configs/deploy/panda_sim.yaml")
    parser.add_argument("--policy", help="policy node: a named policy (expert, random, zero) or a policy directory")
    parser.add_argument("--episodes", type=int, help="robot twin: stop after N episodes (0: run until Ctrl-C)")
    parser.add_argument("--domain-id", type=int,
                        help="ROS_DOMAIN_ID of the graph (default: a free one; a busy one is refused)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. params.policy.control_hz=50")
    try:
        from robolearn.ros_nodes.launcher import DeployConfig

        parser.epilog = "config keys:\n" + "\n".join(describe(DeployConfig))
    except ImportError:
        parser.epilog = "install the ros extra (pip install 'robolearn[ros]') to launch node graphs"


def run(args: argparse.Namespace) -> int:
    from robolearn.cli.checks import check_launch_inputs, check_policy_loads

    check_launch_inputs(args.config, args.policy)
    from robolearn.ros_nodes.launcher import DeployConfig, run_graph

    flags = {"params.policy.policy": args.policy, "params.sim_robot.episodes": args.episodes,
             "domain_id": args.domain_id}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = load_config(DeployConfig, args.config, overrides)
    if args.policy and Path(args.policy).is_dir():  # loaded here so that a bad one fails before any node starts
        check_policy_loads(args.policy, cfg.env_id)
    result = run_graph(cfg)
    n, k = len(result.episodes), sum(e["success"] for e in result.episodes)
    if n:
        from robolearn.core.stats import format_rate

        print(f"{cfg.env_id} over ROS 2: success {format_rate(k, n)}")
    for topic, status in result.status.items():
        print(f"  {topic}: {status}")
    print(f"stopped: {result.reason}; exit codes {result.exit_codes}")
    return 0 if all(code in (0, -2) for code in result.exit_codes.values()) else 1
