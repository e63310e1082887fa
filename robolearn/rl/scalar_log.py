"""Scalars of a training run: ``metrics.jsonl`` lines and, when tensorboard is installed, TensorBoard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ScalarLog:
    """Appends ``{step_key: step, **scalars}`` lines to ``<run_dir>/metrics.jsonl`` (when ``record``) and writes
    every scalar to TensorBoard under ``<run_dir>/tb`` (``pip install tensorboard``; skipped without it)."""

    def __init__(self, run_dir: str | Path, step_key: str = "step") -> None:
        run_dir = Path(run_dir)
        self.step_key = step_key
        self.file = (run_dir / "metrics.jsonl").open("a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb: Any = SummaryWriter(str(run_dir / "tb"))
        except ImportError:  # tensorboard is optional
            self.tb = None

    def write(self, step: int, scalars: Mapping[str, float], record: bool = True) -> None:
        """Log ``scalars`` at ``step``; ``record`` False: TensorBoard only (frequent training statistics)."""
        if record:
            self.file.write(json.dumps({self.step_key: step, **scalars}) + "\n")
            self.file.flush()
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
