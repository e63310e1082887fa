"""Where the off-policy loop's transitions come from: its own env, or actors elsewhere.

The loop (:mod:`robolearn.refine.runner`) asks its :class:`Collector` for the next wrapper steps and accounts
each one the same way wherever it was collected: env-step counters, episode outcomes, the learner side's
update-to-data accounting, observers. :class:`LocalCollector` steps the loop's own wrapper env with the loop's
acting policy (runner ``sync``, deterministic for a seed). A collector of remote actors
(:class:`robolearn.dist.actors.RayCollector`, runner ``ray``) has each actor step a wrapper env of its own
with a snapshot of the actor, refreshed every ``weight_sync_every`` updates, and hands back the steps its
actors finished.

:func:`step_wrapper` is one collect step, the same code in the loop's process and in an actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robolearn.refine.acting import Acting
from robolearn.rl.replay import Batch, NStepAccumulator


class Sink(Protocol):
    """Turns wrapper steps into transition batches (the replay keys, plus whatever its router reads)."""

    def push(self, obs: Mapping[str, np.ndarray], reward: np.ndarray, terminated: np.ndarray,
             truncated: np.ndarray, info: Mapping[str, Any]) -> Batch | None: ...

    def flush(self) -> Batch | None: ...

    def reset(self) -> None: ...


class NStepSink:
    """n-step transitions of the executed (critic) action, as :class:`~robolearn.rl.replay.NStepAccumulator`."""

    def __init__(self, num_envs: int, n_step: int, gamma: float) -> None:
        self.acc = NStepAccumulator(num_envs, n_step, gamma)

    def push(self, obs: Mapping[str, np.ndarray], reward: np.ndarray, terminated: np.ndarray,
             truncated: np.ndarray, info: Mapping[str, Any]) -> Batch | None:
        return self.acc.push(obs, info["critic_action"], reward, terminated, truncated, info["final_obs"])

    def flush(self) -> Batch | None:
        """Nothing is held back (partial n-step windows are dropped at the end, as at a resume)."""
        return None

    def reset(self) -> None:
        self.acc.reset()


@dataclass
class StepRecord:
    """One collect step, as observers see it (``B`` envs)."""

    obs: dict[str, np.ndarray]
    """The observation the action was chosen on."""
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, Any]
    actor: int = -1
    """Index of the actor that collected it (-1: the loop's own env)."""


@dataclass
class Collected:
    """One wrapper step of ``B`` envs and what the learner side stores of it."""

    record: StepRecord
    batch: Batch | None
    """The transitions the sink completed at this step (None: none yet)."""
    env_steps: int
    """Single-env transitions the step executed (``B``; ``B * Ta`` for a chunk-executing wrapper)."""
    units: int
    """Wrapper transitions (``B``): what the update clock counts."""


def step_wrapper(env: Any, sink: Sink, acting: Acting, obs: dict[str, np.ndarray], uniform: bool,
                 deterministic: bool) -> tuple[dict[str, np.ndarray], Collected]:
    """One step of the wrapper ``env``: uniform actions ``(B, Da)`` in ``[-1, 1]`` from ``acting.rng`` or the
    acting policy's, the step, its transitions from ``sink``; the next observation and the step."""
    if uniform:
        action = acting.rng.uniform(-1, 1, (env.num_envs, env.action_dim)).astype(np.float32)
    else:
        action = acting.act(obs, deterministic=deterministic)
    nxt, reward, term, trunc, info = env.step(action)
    stored = {k: v for k, v in obs.items() if k in env.obs_shapes}  # acting-only keys (V-GPS candidates) stay out
    batch = sink.push(stored, reward, term, trunc, info)
    record = StepRecord(obs, action, reward, term, trunc, info)
    return nxt, Collected(record, batch, int(info.get("env_steps", env.num_envs)), env.num_envs)


class Collector(Protocol):
    """What the loop needs from where its envs step."""

    faults: list[str]
    """One line per fault (an actor that died)."""
    restarts: int
    """Actors restarted after a fault."""
    lost_env_steps: int
    """Env steps collected (or being collected) by actors that died, never stored."""

    def start(self, seed: int) -> None:
        """Reset the envs with ``seed`` (at the start and at a resume: ``cfg.seed + env_steps``)."""

    def collect(self, acting: Acting, uniform: bool, deterministic: bool) -> list[Collected]:
        """The next finished steps, in collection order per actor (may be empty: nothing finished yet)."""

    def flush(self) -> list[Batch]:
        """Transitions the sinks held back, at the end of the run."""

    def stop(self) -> None:
        """End the collection (actors are let go); the envs stay open."""

    def close(self) -> None: ...


class LocalCollector:
    """The loop's own wrapper env and sink, stepped with the loop's acting policy, one step per call."""

    def __init__(self, env: Any, sink: Sink) -> None:
        self.env, self.sink = env, sink
        self.faults: list[str] = []
        self.restarts = 0
        self.lost_env_steps = 0
        self.obs: dict[str, np.ndarray] | None = None

    def start(self, seed: int) -> None:
        self.obs = self.env.reset(seed=seed)
        self.sink.reset()

    def collect(self, acting: Acting, uniform: bool, deterministic: bool) -> list[Collected]:
        if self.obs is None:
            raise RuntimeError("LocalCollector.collect before start: call start(seed) first")
        self.obs, step = step_wrapper(self.env, self.sink, acting, self.obs, uniform, deterministic)
        return [step]

    def flush(self) -> list[Batch]:
        tail = self.sink.flush()
        return [] if tail is None else [tail]

    def stop(self) -> None:
        """Nothing runs elsewhere."""

    def close(self) -> None:
        """Nothing of its own: the env is the loop's, which closes it."""
