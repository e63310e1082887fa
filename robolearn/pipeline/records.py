"""Evaluation records of a pipeline run: built in one place, written to and read from ``eval/``.

A record is the JSON the report tabulates::

    {"policy", "dynamics", "episodes", "successes", "success_rate", "ci95": [lo, hi],
     "mean_return" (None over ROS 2), "mean_length", "success_length": {"mean", "ci95"} or None,
     "videos": [paths], ...extra keys}

``success_length`` is the mean length of the successful episodes (control steps) with its bootstrap interval:
the time to success, which is the lap time on QuadGates (a lap ends the episode).

Sim evaluations (:func:`evaluate_policy`) and the ROS 2 closed loop both build theirs with
:func:`eval_record`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from robolearn.core.durable import atomic_write_json
from robolearn.core.protocols import Policy
from robolearn.core.stats import mean_interval, wilson_interval
from robolearn.pipeline.config import PipelineConfig
from robolearn.pipeline.layout import RunLayout


def eval_record(policy: str, dynamics: str, successes: Sequence[bool], lengths: Sequence[float],
                returns: Sequence[float] | None = None, videos: Sequence[str | Path] = (),
                **extra: Any) -> dict[str, Any]:
    """The record of ``policy`` on ``dynamics`` from per-episode outcomes (lengths in control steps);
    ``returns`` None where they are not measured (over ROS 2); ``extra`` keys are appended."""
    n, wins = len(successes), sum(bool(s) for s in successes)
    if n == 0:
        raise ValueError(f"no finished episode to record for {policy} ({dynamics})")
    won = [float(length) for length, s in zip(lengths, successes, strict=True) if s]
    success_length = None
    if won:
        mean, lo, hi = mean_interval(won)
        success_length = {"mean": mean, "ci95": [lo, hi]}
    return {
        "policy": policy, "dynamics": dynamics, "episodes": n, "successes": wins,
        "success_rate": wins / n, "ci95": list(wilson_interval(wins, n)),
        "mean_return": None if returns is None else sum(returns) / n, "mean_length": sum(lengths) / n,
        "success_length": success_length,
        "videos": [str(v) for v in videos], **extra,
    }


_EVAL_ENVS: list[Any] = []
"""The run's :class:`~robolearn.evaluate.EnvCache` (built by the first evaluation, closed by
:func:`close_eval_envs`): every policy of a run is evaluated in the same envs."""


def _eval_envs() -> Any:
    from robolearn.evaluate import EnvCache

    if not _EVAL_ENVS:
        _EVAL_ENVS.append(EnvCache())
    return _EVAL_ENVS[0]


def close_eval_envs() -> None:
    """Close the evaluation envs the run built (the pipeline calls this when it ends)."""
    while _EVAL_ENVS:
        _EVAL_ENVS.pop().close()


class Condition(NamedTuple):
    """What an evaluation runs under: a dynamics preset, a visual preset and task settings."""

    dynamics: str
    visual: str
    task: dict[str, Any]


def visual_label(visual: str, dynamics: str) -> str:
    """The condition name of visual preset ``visual`` under ``dynamics``: ``held-out``, ``held-out+real-gap``."""
    return visual if dynamics == "nominal" else f"{visual}+{dynamics}"


def eval_conditions(cfg: PipelineConfig) -> dict[str, Condition]:
    """``{label: condition}`` of the base's and refined policies' evaluations: each of ``eval.dynamics`` under
    the pipeline's ``task``, each of ``eval.visual`` under each of them (:func:`visual_label`), then each of
    ``eval.tasks`` on nominal dynamics."""
    conditions = {d: Condition(d, "nominal", dict(cfg.task)) for d in cfg.eval.dynamics}
    conditions.update({visual_label(v, d): Condition(d, v, dict(cfg.task))
                       for v in cfg.eval.visual for d in cfg.eval.dynamics})
    conditions.update({name: Condition("nominal", "nominal", {**cfg.task, **extra})
                       for name, extra in cfg.eval.tasks.items()})
    return conditions


def evaluate_policy(cfg: PipelineConfig, policy: Policy, name: str, condition: str) -> dict[str, Any]:
    """Evaluate ``policy`` under ``condition`` (a label of :func:`eval_conditions`, or a dynamics preset under the
    pipeline's task) as ``cfg.eval`` says; write and return its record (:meth:`RunLayout.eval_record`, the label
    as its dynamics). Videos are recorded on nominal dynamics only."""
    from robolearn.evaluate import evaluate

    layout = cfg.layout
    dynamics, visual, task = eval_conditions(cfg).get(condition, Condition(condition, "nominal", dict(cfg.task)))
    videos = cfg.eval.videos if condition == "nominal" else 0
    result = evaluate(policy, cfg.env_id, episodes=cfg.eval.episodes, seed=cfg.eval.seed,
                      num_envs=cfg.eval.num_envs, dynamics=dynamics, task=task, visual=visual,
                      video_dir=layout.eval_videos(name), videos=videos, envs=_eval_envs())
    record = eval_record(name, condition, result.successes, result.lengths, result.returns, result.videos)
    atomic_write_json(layout.eval_record(name, condition), record)
    return record


def load_evals(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every evaluation record of a run directory, sorted by file name."""
    return [json.loads(p.read_text()) for p in sorted(RunLayout(Path(run_dir)).eval_dir.glob("*.json"))]
