"""Finding the newest checkpoint of a run directory: one rule for policy training and refinement.

Both write ``<run_dir>/checkpoints/step_<N>/``. Refinement (:mod:`robolearn.rl.checkpoint`) also keeps a
``LATEST`` pointer, replaced atomically once a step directory is complete; policy training writes none.
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINTS, LATEST = "checkpoints", "LATEST"
STEP_DIR = re.compile(r"^step_(\d+)$")
"""A complete step directory's name (``step_<N>.tmp`` is one being written)."""


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
