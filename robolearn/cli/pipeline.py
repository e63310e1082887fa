"""``robolearn pipeline``: demonstrations to a refined policy running over ROS 2, with a report."""

from __future__ import annotations

import argparse

from robolearn.core.config import describe
from robolearn.pipeline.config import PipelineConfig

HELP = "Collect, train, evaluate, refine, run over ROS 2 and report; resumes where it stopped."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="pipeline preset, e.g. configs/pipelines/panda_lift.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. eval.episodes=50")
    parser.add_argument("--force", metavar="STAGE", help="rerun from this stage (and every later one)")
    parser.epilog = "config keys:\n" + "\n".join(line for line in describe(PipelineConfig) if line.count(".") < 3)


def run(args: argparse.Namespace) -> int:
    from robolearn.pipeline.pipeline import run_pipeline
    from robolearn.pipeline.validation import load_pipeline_config

    cfg = load_pipeline_config(args.config, args.overrides)
    results = run_pipeline(cfg, force=args.force)
    report = results.get("report", {})
    if report:
        print(f"report: {report.get('html')}")
    return 0
