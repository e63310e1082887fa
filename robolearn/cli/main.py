"""``robolearn <subcommand>``: one command, subcommands in an explicit table.

Each subcommand is a module of this package with ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; ``run`` is short and calls a plain function that tests call directly. Modules
are imported only when their subcommand runs, so ``robolearn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from robolearn.core.config import ConfigError

SUBCOMMANDS: dict[str, str] = {
    "envs": "robolearn.cli.envs",
    "rollout": "robolearn.cli.rollout",
    "demo": "robolearn.cli.demo",
    "collect": "robolearn.cli.collect",
    "teleop": "robolearn.cli.teleop",
    "dataset": "robolearn.cli.dataset",
    "train": "robolearn.cli.train",
    "eval": "robolearn.cli.eval",
    "export": "robolearn.cli.export",
    "refine": "robolearn.cli.refine",
    "hil": "robolearn.cli.hil",
    "reward-classifier": "robolearn.cli.reward_classifier",
    "launch": "robolearn.cli.launch",
    "pipeline": "robolearn.cli.pipeline",
}
"""Subcommand name -> module. Add a line here for a new subcommand."""


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``selected``'s module is imported (all when None)."""
    parser = argparse.ArgumentParser(prog="robolearn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        if selected is not None and name != selected:
            sub.add_parser(name, help="")
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP.replace("%", "%%"),  # argparse %-formats help strings
            description=module.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if selected is None and argv and not argv[0].startswith("-"):
        print(f"robolearn: unknown command '{argv[0]}'; choose from: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except ConfigError as err:
        print(f"robolearn {args.command}: config error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
