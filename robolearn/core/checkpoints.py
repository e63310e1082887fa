"""Finding the newest checkpoint of a run directory: one rule for policy training and refinement.

Both write ``<run_dir>/checkpoints/step_<N>/``. Refinement (:mod:`robolearn.rl.checkpoint`) also keeps a
``LATEST`` pointer, replaced atomically once a step directory is complete; policy training writes none.

A step directory may hold ``MANIFEST.json`` (:func:`write_manifest`): each file's size and sha256, so that a
truncated or altered file is found (:func:`verify_manifest`) before anything reads it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from robolearn.core.durable import file_sha256

CHECKPOINTS, LATEST, MANIFEST = "checkpoints", "LATEST", "MANIFEST.json"
STEP_DIR = re.compile(r"^step_(\d+)$")
"""A complete step directory's name (``step_<N>.tmp`` is one being written)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (damaged, an old format, or not a checkpoint); the message is one
    line naming the file and what to do."""


def write_manifest(step_dir: str | Path, names: list[str]) -> Path:
    """Write ``MANIFEST.json`` listing the size and sha256 of each of ``names`` (files in ``step_dir``)."""
    step_dir = Path(step_dir)
    files = {n: {"size": (step_dir / n).stat().st_size, "sha256": file_sha256(step_dir / n)} for n in sorted(names)}
    path = step_dir / MANIFEST
    path.write_text(json.dumps({"files": files}, indent=1) + "\n")
    return path


def verify_manifest(step_dir: str | Path) -> None:
    """Check every file ``MANIFEST.json`` lists: present, same size, same sha256. Raises
    :class:`CheckpointError` naming the first damaged file (or the manifest itself)."""
    step_dir = Path(step_dir)
    path = step_dir / MANIFEST
    try:
        files = json.loads(path.read_text())["files"]
        entries = [(str(n), int(e["size"]), str(e["sha256"])) for n, e in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{path}: missing or unreadable checkpoint manifest ({type(err).__name__})") from err
    for name, size, digest in entries:
        file = step_dir / name
        if Path(name).name != name or not file.is_file():
            raise CheckpointError(f"{file}: listed in {MANIFEST} but missing")
        actual = file.stat().st_size
        if actual != size:
            raise CheckpointError(f"{file}: damaged (truncated or altered: {actual} bytes, {size} written)")
        if file_sha256(file) != digest:
            raise CheckpointError(f"{file}: damaged (its sha256 differs from the one written)")


def step_number(path: Path) -> int:
    """``N`` of a ``step_<N>`` directory (-1 for another name)."""
    m = STEP_DIR.match(path.name)
    return int(m.group(1)) if m else -1


def checkpoint_candidates(run_dir: str | Path, required: tuple[str, ...] = ()) -> list[Path]:
    """Step directories of ``run_dir`` to try on resume, newest first: the one ``LATEST`` names (when there is
    a pointer), then every older ``step_<N>`` directory; each holds at least one of ``required`` (when given)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    steps = sorted((p for p in root.iterdir() if STEP_DIR.match(p.name) and p.is_dir()), key=step_number, reverse=True)
    pointer = root / LATEST
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if named.parent != root or not STEP_DIR.match(named.name):
            return []
        steps = [named] + [p for p in steps if step_number(p) < step_number(named)]
    return [p for p in steps if p.is_dir() and (not required or any((p / r).is_file() for r in required))]


def latest_checkpoint(run_dir: str | Path, required: str | None = None) -> Path | None:
    """The newest checkpoint directory of ``run_dir``, or None when there is none.

    With a ``checkpoints/LATEST`` pointer: the directory it names. Without one: the ``step_<N>`` directory
    with the largest ``N``. With ``required`` (a file name) the chosen directory must hold that file (a
    pointer to a directory without it gives None).
    """
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        chosen: Path | None = root / pointer.read_text().strip()
    elif root.is_dir():
        steps = [(int(m.group(1)), p) for p in root.iterdir()
                 if (m := STEP_DIR.match(p.name)) and p.is_dir() and (required is None or (p / required).is_file())]
        chosen = max(steps)[1] if steps else None
    else:
        return None
    if chosen is None or not chosen.is_dir() or (required is not None and not (chosen / required).is_file()):
        return None
    return chosen
