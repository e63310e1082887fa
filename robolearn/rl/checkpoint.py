"""Atomic training checkpoints: a crash (even SIGKILL) at any moment leaves the last complete one intact.

Layout under ``<run_dir>/checkpoints``::

    step_<N>/state.pt           learner state, loop counters, RNG states (torch.save)
    step_<N>/replay_<name>.npz  each replay buffer
    LATEST                      the name of the newest complete step directory

A checkpoint is written to ``step_<N>.tmp``, its files are fsynced, the directory is renamed to
``step_<N>`` and only then is ``LATEST`` replaced (write ``LATEST.tmp`` + ``os.replace``). Older step
directories beyond ``keep`` are removed afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robolearn.core.checkpoints import LATEST
from robolearn.core.checkpoints import latest_checkpoint as latest_step_dir
from robolearn.core.durable import fsync_dir
from robolearn.rl.replay import ReplayBuffer

STATE = "state.pt"


def save_checkpoint(run_dir: str | Path, step: int, state: Mapping[str, Any],
                    buffers: Mapping[str, ReplayBuffer | None], keep: int = 2) -> Path:
    """Write ``state`` (anything ``torch.save`` takes) and the buffers atomically; returns the step dir."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f"step_{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(dict(state), tmp / STATE)
    for name, buf in buffers.items():
        if buf is not None:
            with open(tmp / f"replay_{name}.npz", "wb") as f:
                np.savez(f, **buf.state_dict())
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


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of ``run_dir`` (None when there is none): the rule of
    :func:`robolearn.core.checkpoints.latest_checkpoint`, the directory holding ``state.pt``."""
    return latest_step_dir(run_dir, required=STATE)


def load_checkpoint(path: str | Path, buffers: Mapping[str, ReplayBuffer | None]) -> dict[str, Any]:
    """Load a step directory: fills ``buffers`` in place and returns the saved state dict."""
    path = Path(path)
    if not (path / STATE).is_file():
        raise FileNotFoundError(f"no checkpoint state at {path / STATE}")
    state = torch.load(path / STATE, map_location="cpu", weights_only=False)
    for name, buf in buffers.items():
        file = path / f"replay_{name}.npz"
        if buf is not None and file.is_file():
            with np.load(file) as data:
                buf.load_state_dict({k: data[k] for k in data.files})
    return state


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy generator's state (a plain dict, picklable)."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    rng.bit_generator.state = dict(state)
