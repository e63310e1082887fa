"""Atomic training checkpoints in a format that runs no code when loaded.

Layout under ``<run_dir>/checkpoints``::

    step_<N>/state.safetensors  every tensor of the state (networks, optimizer moments, torch RNG states)
    step_<N>/state.json         the rest as plain data, with references to those tensors (state_codec)
    step_<N>/replay_<name>.npz  each replay buffer (plain arrays, loaded with allow_pickle=False)
    step_<N>/MANIFEST.json      size and sha256 of each file above
    LATEST                      the name of the newest complete step directory

A checkpoint is written to ``step_<N>.tmp``, its files are fsynced, the directory is renamed to
``step_<N>`` and only then is ``LATEST`` replaced (write ``LATEST.tmp`` + ``os.replace``). Older step
directories beyond ``keep`` are removed afterwards. On resume a damaged newest checkpoint (a file that
disagrees with its manifest) is named on stderr and the previous intact one is used.

The previous format (``state.pt``, a pickle) is refused, never unpickled; a user who trusts such a run
converts it with ``python -m robolearn.rl.checkpoint convert <run_dir>``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from robolearn.core.checkpoints import (
    LATEST,
    CheckpointError,
    checkpoint_candidates,
    verify_manifest,
    write_manifest,
)
from robolearn.core.durable import fsync_dir
from robolearn.rl.replay import ReplayBuffer
from robolearn.rl.state_codec import decode, encode

TENSORS, STRUCTURE, LEGACY = "state.safetensors", "state.json", "state.pt"
FORMAT = 2
"""``state.json``'s ``format``; 1 was the pickled ``state.pt``."""
CONVERT = "python -m robolearn.rl.checkpoint convert"
log = logging.getLogger(__name__)


def _write_state(directory: Path, state: Mapping[str, Any]) -> None:
    structure, tensors = encode(dict(state))
    save_file(tensors, str(directory / TENSORS))
    (directory / STRUCTURE).write_text(json.dumps({"format": FORMAT, "state": structure}) + "\n")


def save_checkpoint(run_dir: str | Path, step: int, state: Mapping[str, Any],
                    buffers: Mapping[str, ReplayBuffer | None], keep: int = 2) -> Path:
    """Write ``state`` (nested dicts/lists/tuples of tensors, arrays and plain data) and the buffers
    atomically; returns the step dir."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f"step_{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _write_state(tmp, state)
    for name, buf in buffers.items():
        if buf is not None:
            with open(tmp / f"replay_{name}.npz", "wb") as f:
                np.savez(f, **buf.state_dict())
    write_manifest(tmp, [f.name for f in tmp.iterdir()])
    for f in tmp.iterdir():
        fsync_dir(f)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / (LATEST + ".tmp")
    pointer.write_text(final.name)
    fsync_dir(pointer)
    os.replace(pointer, root / LATEST)
    fsync_dir(root)
    steps = sorted((p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp")),
                   key=lambda p: int(p.name.split("_")[1]))
    for old in steps[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _is_legacy(path: Path) -> bool:
    return (path / LEGACY).is_file() and not (path / STRUCTURE).is_file()


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest intact checkpoint directory of ``run_dir`` (None when there is none).

    The rule of :func:`robolearn.core.checkpoints.latest_checkpoint`, with a fallback: a newest checkpoint whose
    files disagree with its manifest is named in one line on stderr and the previous one is tried. A
    directory in the old pickle format is returned as is (:func:`load_checkpoint` then refuses it by name).
    """
    for path in checkpoint_candidates(run_dir, required=(STRUCTURE, LEGACY)):
        if _is_legacy(path):
            return path
        try:
            verify_manifest(path)
        except CheckpointError as err:
            log.warning("robolearn: skipping a damaged checkpoint: %s", err)
            continue
        return path
    return None


def _load_state(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads((path / STRUCTURE).read_text())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CheckpointError(f"{path / STRUCTURE}: not a robolearn checkpoint of format {FORMAT}")
        state = decode(doc["state"], load_file(str(path / TENSORS)))
    except CheckpointError:
        raise
    except Exception as err:  # safetensors, json and decode errors alike: the file is not what was written
        raise CheckpointError(f"{path}: unreadable checkpoint state ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path / STRUCTURE}: the state is a {type(state).__name__}, not a mapping")
    return state


def _load_replay(file: Path, buf: ReplayBuffer) -> None:
    try:
        with np.load(file, allow_pickle=False) as data:
            buf.load_state_dict({k: data[k] for k in data.files})
    except Exception as err:  # zipfile, numpy and shape errors alike name the file
        raise CheckpointError(f"{file}: unreadable replay buffer ({type(err).__name__}: {err})") from err


def load_checkpoint(path: str | Path, buffers: Mapping[str, ReplayBuffer | None]) -> dict[str, Any]:
    """Load a step directory: fills ``buffers`` in place and returns the saved state dict.

    Raises :class:`CheckpointError` (one line naming the file) for a damaged checkpoint or one in the old
    pickle format, and FileNotFoundError when ``path`` holds no checkpoint.
    """
    path = Path(path)
    if _is_legacy(path):
        raise CheckpointError(
            f"{path / LEGACY}: a checkpoint in the old pickle format, which robolearn no longer loads (loading "
            f"it could run code); re-run, or if you trust this file: {CONVERT} {path}")
    if not (path / STRUCTURE).is_file():
        raise FileNotFoundError(f"no checkpoint state at {path / STRUCTURE}")
    verify_manifest(path)
    state = _load_state(path)
    for name, buf in buffers.items():
        file = path / f"replay_{name}.npz"
        if buf is not None and file.is_file():
            _load_replay(file, buf)
    return state


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy generator's state (a plain dict of strings and ints, stored as JSON)."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Restore a state :func:`rng_state` returned."""
    rng.bit_generator.state = dict(state)


def convert_legacy(run_dir: str | Path) -> list[Path]:
    """Rewrite every old-format (pickled ``state.pt``) step directory of ``run_dir`` (or the one step directory
    given) in the current format.

    This unpickles ``state.pt``, which can run code: only for a run you trust. ``state.pt`` is kept.
    Returns the converted directories.
    """
    converted = []
    given = Path(run_dir)
    steps = [given] if (given / LEGACY).is_file() else checkpoint_candidates(given, required=(LEGACY,))
    for path in steps:
        if not _is_legacy(path):
            continue
        state = torch.load(path / LEGACY, map_location="cpu", weights_only=False)  # trusted by the user
        _write_state(path, state)
        names = [STRUCTURE, TENSORS] + [f.name for f in path.glob("replay_*.npz")]
        write_manifest(path, names)
        converted.append(path)
    return converted


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "convert":
        print(f"usage: {CONVERT} <run_dir or step_dir>"
              "  (unpickles the run's state.pt files: only for a run you trust)",
              file=sys.stderr)
        return 2
    done = convert_legacy(argv[1])
    print(f"converted {len(done)} checkpoint(s): {', '.join(p.name for p in done) or 'none in the old format'}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
