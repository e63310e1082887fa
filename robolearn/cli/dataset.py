"""``robolearn dataset info|verify|repair|merge|export|import``: inspect and maintain episode datasets."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Inspect, verify, repair, merge, and export/import (LeRobot v3) episode datasets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("info", help="episodes, steps, success, features and statistics")
    p.add_argument("root")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p = sub.add_parser("verify", help="check every committed file (sizes, sha256, column types, finite values); "
                       "exit 1 if damaged")
    p.add_argument("root")
    p.add_argument("--quick", action="store_true", help="only check file sizes, no hashing or decoding")
    p = sub.add_parser("repair", help="clean crash leftovers, quarantine damaged episodes, drop records "
                       "pointing outside the dataset, rebuild a lost meta/info.json")
    p.add_argument("root")
    p = sub.add_parser("merge", help="append the episodes of several datasets to OUT")
    p.add_argument("sources", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--only-success", action="store_true")
    p = sub.add_parser("export", help="write a copy in another format")
    p.add_argument("root")
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=["lerobot"], default="lerobot")
    p.add_argument("--vcodec", default="libx264",
                   help="camera video encoder: libx264 (H.264) or libsvtav1 (AV1, LeRobot's default)")
    p.add_argument("--crf", type=int, default=10, help="video quality (lower is better, larger files)")
    p = sub.add_parser("import", help="read a dataset of another format into a new robolearn dataset")
    p.add_argument("source")
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=["lerobot"], default="lerobot")
    p.add_argument("--images", help="store camera frames as raw, png, jpeg or jpeg:<quality> (default: as "
                   "exported, else raw)")


def _info(args: argparse.Namespace) -> int:
    from robolearn.datasets.reader import EpisodeDataset
    from robolearn.datasets.stats import stats_to_json

    ds = EpisodeDataset(args.root)
    summary = ds.summary()
    if args.json:
        print(json.dumps({**summary, "stats": stats_to_json(ds.stats())}, indent=2))
        return 0
    print(f"{summary['root']}: {summary['env_id'] or '(no env id)'} at {summary['fps']:g} Hz")
    print(f"  episodes {summary['episodes']} ({summary['success']} successful), steps {summary['steps']}, "
          f"length {summary['length_min']}..{summary['length_max']}, {summary['bytes'] / 2**20:.1f} MiB, "
          f"images stored as {summary['images']}")
    print(f"  intervention steps {summary['intervention_steps']}")
    stats = ds.stats()
    for key, feat in {**ds.info.observation, "action": ds.info.action}.items():
        s = stats.get(key)
        rng = f" mean {_fmt(s['mean'])} std {_fmt(s['std'])}" if s else ""
        print(f"  {key:<16} {str(tuple(feat.shape)):<14} {feat.dtype:<8} {feat.units}{rng}")
    if ds.torn_tail is not None:
        print("  note: an interrupted commit left a torn index line; run `robolearn dataset repair`")
    return 0


def _fmt(values) -> str:
    return "[" + " ".join(f"{v:.3g}" for v in values.reshape(-1)[:8]) + (" ...]" if values.size > 8 else "]")


def _verify(args: argparse.Namespace) -> int:
    from robolearn.datasets.repair import verify

    report = verify(args.root, deep=not args.quick)
    for finding in report.findings:
        print(f"  {finding}")
    status = "OK" if report.ok else "DAMAGED"
    print(f"{args.root}: {status}: {report.episodes} episodes, {report.steps} steps")
    if not report.ok:
        print(f"run `robolearn dataset repair {args.root}` to quarantine damaged episodes", file=sys.stderr)
    return 0 if report.ok else 1


def run(args: argparse.Namespace) -> int:
    from robolearn.datasets.format import DatasetError

    try:
        return _dispatch(args)
    except DatasetError as err:
        print(f"robolearn dataset {args.action}: {err}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.action == "info":
        return _info(args)
    if args.action == "verify":
        return _verify(args)
    if args.action == "repair":
        from robolearn.datasets.repair import repair, verify

        for line in repair(args.root) or ["nothing to repair"]:
            print(f"  {line}")
        return 0 if verify(args.root).ok else 1
    if args.action == "merge":
        from robolearn.datasets.merge import merge_datasets

        n = merge_datasets(args.sources, args.out, only_success=args.only_success)
        print(f"{args.out}: added {n} episodes")
        return 0
    if args.action == "export":
        from robolearn.datasets.lerobot import export_lerobot

        print(f"wrote {export_lerobot(args.root, args.out, vcodec=args.vcodec, crf=args.crf)} (LeRobot v3.0)")
        return 0
    from robolearn.datasets.lerobot import import_lerobot

    print(f"wrote {import_lerobot(args.source, args.out, images=args.images)}")
    return 0
