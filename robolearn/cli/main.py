"""``robolearn <subcommand>``: one command, subcommands in an explicit table.

Each subcommand is a module of this package with ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; ``run`` is short and calls a plain function that tests call directly. Modules
are imported only when their subcommand runs, so ``robolearn --help`` stays fast.

A user error (see :mod:`robolearn.cli.errors`) prints one line and exits with status 2; ``--debug`` keeps
the traceback. Output cut short by a closed pipe (``robolearn dataset info | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from robolearn.cli.errors import user_message

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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
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


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``| head``): stop without a traceback or a flush error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
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
        code = int(args._run(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print(f"robolearn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = user_message(err)
        if debug or message is None:
            raise
        print(f"robolearn {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
