"""Resumable stages of a run directory.

A stage is a named function that writes its outputs under the run directory and returns a small
JSON-able summary. :class:`StageRunner` records each finished stage as ``stages/<name>.json``
(:meth:`~robolearn.pipeline.layout.RunLayout.stage_marker`; written to a temporary file and renamed,
so a killed pipeline never leaves a half-written marker) and skips stages whose marker exists, so an
interrupted pipeline resumes where it stopped; a stage that was running when the pipeline died starts
again and is expected to resume from its own checkpoints.
``force`` reruns a stage and every stage after it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robolearn.core.durable import atomic_write_json
from robolearn.pipeline.layout import RunLayout

StageFn = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One stage: its name, its function, and the folders it owns (cleared when forced; paths from the
    run's :class:`~robolearn.pipeline.layout.RunLayout`)."""

    name: str
    fn: StageFn
    outputs: tuple[Path, ...] = ()


class StageRunner:
    """Runs stages in order, skipping completed ones."""

    def __init__(self, run_dir: str | Path, stages: Sequence[Stage], log: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)
        self.stages = list(stages)
        self.log = log
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stage names: {names}")

    def marker(self, name: str) -> Path:
        """The stage's marker file (:meth:`RunLayout.stage_marker`)."""
        return self.layout.stage_marker(name)

    def done(self, name: str) -> dict[str, Any] | None:
        """The finished stage's record, or None when it has not finished."""
        path = self.marker(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def force(self, name: str) -> None:
        """Forget ``name`` and every later stage, deleting their outputs."""
        names = [s.name for s in self.stages]
        if name not in names:
            raise ValueError(f"unknown stage '{name}'; stages: {', '.join(names)}")
        for stage in self.stages[names.index(name):]:
            self.marker(stage.name).unlink(missing_ok=True)
            for out in stage.outputs:
                shutil.rmtree(out, ignore_errors=True)

    def run(self) -> dict[str, dict[str, Any]]:
        """Run every stage not yet done; return each stage's summary."""
        results: dict[str, dict[str, Any]] = {}
        for stage in self.stages:
            previous = self.done(stage.name)
            if previous is not None:
                self.log(f"[{stage.name}] done earlier ({previous['seconds']:.0f} s), skipped")
                results[stage.name] = previous
                continue
            self.log(f"[{stage.name}] running")
            start = time.perf_counter()
            summary = stage.fn()
            record = {"stage": stage.name, "seconds": time.perf_counter() - start, **summary}
            atomic_write_json(self.marker(stage.name), record)
            self.log(f"[{stage.name}] finished in {record['seconds']:.0f} s")
            results[stage.name] = record
        return results
