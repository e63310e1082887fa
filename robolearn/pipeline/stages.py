"""Resumable stages of a run directory.

A stage is a named function that writes its outputs under the run directory and returns a small
JSON-able summary. :class:`StageRunner` records each finished stage as ``stages/<name>.json``
(:meth:`~robolearn.pipeline.layout.RunLayout.stage_marker`; written to a temporary file and renamed,
so a killed pipeline never leaves a half-written marker) and skips stages whose marker exists, so an
interrupted pipeline resumes where it stopped; a stage that was running when the pipeline died starts
again and is expected to resume from its own checkpoints.
``force`` reruns a stage and every stage after it.

A ``background`` stage (the real-time ROS 2 closed loop, which waits on the wall clock more than it computes)
runs in a thread beside the stages after it; a stage with ``waits`` (the report) starts only once every
background stage has finished, and the run ends only then too. A background stage's error is raised when it
is joined; when a foreground stage fails (or Ctrl-C), running background stages are cancelled through their
``cancel`` callable and joined before the error propagates. Forcing a background stage reruns it and the
stages that wait for it, not the foreground stages listed after it.
"""

from __future__ import annotations

import json
import shutil
import threading
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
    background: bool = False
    """Run in a thread beside the stages after it."""
    waits: bool = False
    """Start only after every background stage has finished."""
    cancel: Callable[[], None] | None = None
    """Asks a running background stage to stop early (called when the foreground fails)."""


class _Background:
    """A background stage's thread and its outcome."""

    def __init__(self, stage: Stage, run: Callable[[Stage], dict[str, Any]]):
        self.stage, self.record, self.error = stage, None, None
        self.thread = threading.Thread(target=self._main, args=(run,), name=f"stage-{stage.name}", daemon=True)
        self.thread.start()

    def _main(self, run: Callable[[Stage], dict[str, Any]]) -> None:
        try:
            self.record = run(self.stage)
        except BaseException as exc:  # re-raised in the runner's thread by join()
            self.error = exc

    def join(self) -> dict[str, Any]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.record


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
        forced = self.stages[names.index(name)]
        for stage in self.stages[names.index(name):]:
            if forced.background and stage is not forced and not stage.waits:
                continue  # nothing after a background stage reads it but the stages that wait for it
            self.marker(stage.name).unlink(missing_ok=True)
            for out in stage.outputs:
                shutil.rmtree(out, ignore_errors=True)

    def _run_one(self, stage: Stage) -> dict[str, Any]:
        start = time.perf_counter()
        summary = stage.fn()
        record = {"stage": stage.name, "seconds": time.perf_counter() - start, **summary}
        atomic_write_json(self.marker(stage.name), record)
        self.log(f"[{stage.name}] finished in {record['seconds']:.0f} s")
        return record

    def run(self) -> dict[str, dict[str, Any]]:
        """Run every stage not yet done (background ones in threads); return each stage's summary."""
        results: dict[str, dict[str, Any]] = {}
        running: list[_Background] = []
        try:
            for stage in self.stages:
                previous = self.done(stage.name)
                if previous is not None:
                    self.log(f"[{stage.name}] done earlier ({previous['seconds']:.0f} s), skipped")
                    results[stage.name] = previous
                    continue
                if stage.waits:
                    self._join(running, results)
                self.log(f"[{stage.name}] running" + (" in the background" if stage.background else ""))
                if stage.background:
                    running.append(_Background(stage, self._run_one))
                else:
                    results[stage.name] = self._run_one(stage)
            self._join(running, results)
        except BaseException:
            for job in running:
                if job.stage.cancel is not None:
                    job.stage.cancel()
            for job in running:
                job.thread.join()
            raise
        return {s.name: results[s.name] for s in self.stages if s.name in results}

    @staticmethod
    def _join(running: list[_Background], results: dict[str, dict[str, Any]]) -> None:
        """Wait for the background stages, oldest first; the first error is raised (the rest stay in
        ``running`` for the caller to cancel)."""
        while running:
            results[running[0].stage.name] = running[0].join()
            running.pop(0)
