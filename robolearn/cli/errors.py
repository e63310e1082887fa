"""User errors as one line: which exceptions the CLI reports without a traceback, and in what words.

:func:`user_message` turns an exception a user can fix (a bad config or flag, a wrong env id, a damaged or
old checkpoint, a path that cannot be written, a check of ours that refused an argument) into one line that
names the problem and the fix; anything else returns None and keeps its traceback. ``robolearn --debug``
shows the traceback for every error.

The project's error types are listed by module and name and looked up in ``sys.modules``: an error from a
module that was never imported cannot have been raised, so nothing heavy is imported here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType

PROJECT_ERRORS: tuple[tuple[str, str], ...] = (
    ("robolearn.core.config", "ConfigError"),
    ("robolearn.core.checkpoints", "CheckpointError"),
    ("robolearn.datasets.format", "DatasetError"),
    ("robolearn.sim.mujoco_env", "ActionError"),
    ("robolearn.sim.robots.panda", "RobotModelError"),
    ("robolearn.ros_nodes.convert", "MessageError"),
    ("robolearn.rl.state_codec", "StateFormatError"),
    ("robolearn.train", "NonFiniteLossError"),
    ("robolearn.cli.checks", "UsageError"),
)
"""(module, class) of each error type whose message is already one line for the user."""

GYM_ID_ERRORS = ("NameNotFound", "NamespaceNotFound", "VersionNotFound", "UnregisteredEnv", "DeprecatedEnv")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The source tree: a ValueError raised by a check in our own code is a refused argument, not a bug."""


def _project_error(err: BaseException) -> bool:
    for module_name, cls_name in PROJECT_ERRORS:
        cls = getattr(sys.modules.get(module_name), cls_name, None)
        if isinstance(cls, type) and isinstance(err, cls):
            return True
    return False


def _raised_by_our_check(err: BaseException) -> bool:
    """A ValueError (TypeError, RuntimeError) whose innermost frame is a ``raise`` in robolearn's source
    (not in torch, numpy...)."""
    tb: TracebackType | None = err.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    source = Path(last.tb_frame.f_code.co_filename)
    if not source.is_absolute() or not source.is_file() or ".venv" in source.parts or "site-packages" in source.parts:
        return False
    try:
        source.resolve().relative_to(PACKAGE_ROOT)
    except ValueError:
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_message(err: OSError) -> str | None:
    where = err.filename if err.filename is not None else ""
    if isinstance(err, PermissionError):
        return f"cannot write or read {where}: permission denied; choose a path you can write (e.g. --out)"
    if isinstance(err, FileNotFoundError):
        return _one_line(err) if not err.filename else f"{where}: no such file or directory; check the path"
    if isinstance(err, (IsADirectoryError, NotADirectoryError, FileExistsError)):
        return f"{where}: {err.strerror}; check the path"
    if err.errno is not None and err.filename is not None:
        return f"{where}: {err.strerror}"
    return None


def user_message(err: BaseException) -> str | None:
    """One line naming the problem and the fix, or None for an error that is not the user's to fix."""
    name = type(err).__name__
    if _project_error(err):
        return ("config error: " if name == "ConfigError" else "") + _one_line(err)
    if type(err).__module__.startswith("gymnasium") and name in GYM_ID_ERRORS:
        return f"{_one_line(err)}; list the registered tasks with 'robolearn envs'"
    if isinstance(err, ImportError) and "pip install" in str(err):
        return _one_line(err)
    if isinstance(err, OSError):
        return _os_message(err)
    if isinstance(err, (ValueError, TypeError, RuntimeError)) and _raised_by_our_check(err):
        return f"{_one_line(err)} (run with --debug for the traceback)"
    sentence = err.args[0] if isinstance(err, KeyError) and err.args else None
    if isinstance(sentence, str) and " " in sentence and _raised_by_our_check(err):  # a message, not a bare key
        return f"{_one_line(sentence)} (run with --debug for the traceback)"
    return None
