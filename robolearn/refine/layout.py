"""The files of a refined-policy directory, readable without torch (the ROS policy node decides where to run a
policy before loading it)."""

from __future__ import annotations

from pathlib import Path

import yaml

REFINED_FILE, ACTOR_FILE = "refined.yaml", "actor.pt"
"""The directory's metadata (format, method, base, actor shapes) and actor weights."""


def refined_method(directory: str | Path) -> str | None:
    """``residual``, ``dsrl`` or ``dsrl-na`` for a refined-policy directory; None for anything else."""
    path = Path(directory) / REFINED_FILE
    if not path.is_file():
        return None
    meta = yaml.safe_load(path.read_text())
    return meta.get("method") if isinstance(meta, dict) else None
