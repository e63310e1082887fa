"""``robolearn reward-classifier``: train and evaluate a learned success classifier (HIL-SERL's reward).

``train`` fits it on the ``is_success`` frame labels of datasets and prints the held-out metrics; ``eval``
prints the same metrics of a saved classifier on other datasets. Use it in a HIL run with
``robolearn hil reward_classifier=DIR [classifier_threshold=0.7]``. See :mod:`robolearn.hil.reward_classifier`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from robolearn.rl.devices import DEVICE_HELP

HELP = "Train (train) or evaluate (eval) a success classifier on dataset frames, for HIL-SERL's reward."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train on the is_success frame labels of datasets",
                           description="Train a success classifier; prints the held-out (per episode) metrics.")
    train.add_argument("--dataset", action="append", required=True, help="dataset directory (repeatable)")
    train.add_argument("--out", required=True, help="output directory of the classifier")
    train.add_argument("--keys", nargs="+", help="observation keys (default: pixel keys if any, else state keys)")
    train.add_argument("--steps", type=int, help="gradient steps (default 2000)")
    train.add_argument("--batch-size", type=int, help="frames per step, half successful (default 128)")
    train.add_argument("--lr", type=float, help="Adam learning rate (default 3e-4)")
    train.add_argument("--val-fraction", type=float, help="share of episodes held out (default 0.25)")
    train.add_argument("--threshold", type=float, help="success when p >= this (default 0.5)")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help=DEVICE_HELP + " (default auto)")
    train.add_argument("--force", action="store_true", help="replace an existing classifier at --out")
    train.add_argument("overrides", nargs="*", help="other RewardClassifierConfig keys, e.g. hidden=[128,128]")
    ev = sub.add_parser("eval", help="metrics of a saved classifier on datasets",
                        description="Accuracy, balanced accuracy, precision and recall of a classifier on datasets.")
    ev.add_argument("--classifier", required=True, help="classifier directory")
    ev.add_argument("--dataset", action="append", required=True, help="dataset directory (repeatable)")
    ev.add_argument("--threshold", type=float, help="success when p >= this (default: the classifier's)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--device", default="auto", help=DEVICE_HELP)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)
    return _train(args) if args.action == "train" else _eval(args)


def _train(args: argparse.Namespace) -> int:
    from robolearn.core.config import ConfigError, load_config
    from robolearn.hil.reward_classifier import RewardClassifierConfig, train_classifier

    flags = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "val_fraction": args.val_fraction,
             "threshold": args.threshold, "seed": args.seed, "device": args.device}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)
    cfg = load_config(RewardClassifierConfig, None, overrides)
    cfg.datasets, cfg.out, cfg.force = list(args.dataset), args.out, bool(args.force) or cfg.force
    cfg.keys = list(args.keys or cfg.keys)
    try:
        result = train_classifier(cfg)
    except (ValueError, KeyError, FileExistsError) as err:
        raise ConfigError(str(err).strip("'\"")) from err
    m = result.metrics
    print(f"{result.out}: {cfg.steps} steps on {result.train_frames} frames ({result.train_positives} successful) "
          f"of {m['train_episodes']} episodes in {result.wall_s:.0f} s, final loss {m['final_loss']:.4f}")
    print(f"  held out: {format_metrics(m)}" if "frames" in m else "  no held-out episodes (val_fraction 0)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from robolearn.core.config import ConfigError
    from robolearn.hil.reward_classifier import evaluate_classifier

    try:
        metrics = evaluate_classifier(args.classifier, args.dataset, args.threshold, args.device)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise ConfigError(str(err).strip("'\"")) from err
    print(json.dumps(metrics, indent=2) if args.json else f"{args.classifier}: {format_metrics(metrics)}")
    return 0


def format_metrics(m: Mapping[str, Any]) -> str:
    """One line of :func:`~robolearn.hil.reward_classifier.binary_metrics` for a terminal."""
    def f(key: str) -> str:
        return "n/a" if m.get(key) is None else f"{m[key]:.3f}"
    return (f"threshold {m['threshold']:.2f}: accuracy {f('accuracy')}, balanced accuracy {f('balanced_accuracy')}, "
            f"precision {f('precision')}, recall {f('recall')} on {m['frames']} frames ({m['positives']} successful) "
            f"of {m['episodes']} episodes; fired in {m['failed_episodes_fired']}/{m['failed_episodes']} failed and "
            f"{m['success_episodes_detected']}/{m['success_episodes']} successful episodes")
