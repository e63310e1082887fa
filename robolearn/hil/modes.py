"""What each human-in-the-loop method learns from a step: rewards, buffers and the update rule.

* **HIL-SERL**: the reward is the sparse task success (the env's in sim, a person's label on a real
  robot); every transition goes to the online buffer and intervened ones also to the demonstration
  buffer; SAC / TD3 updates with RLPD 50/50 sampling from the two.
* **RLIF**: no task reward; the step that preceded a takeover gets -1, every other step 0; every
  transition goes to the online buffer; the same off-policy updates.
* **HG-DAgger**: behaviour cloning of the actor on the intervened transitions only (the baseline).

All three use :class:`~robolearn.rl.learner.OffPolicyLearner` (its actor is what HG-DAgger clones) and
the replay of :mod:`robolearn.rl.replay`. The takeover at step ``t + 1`` is only known one step later,
so :class:`TransitionBuilder` holds each vector step back by one before the n-step accumulator sees it.

What a mode plugs into the off-policy loop (:mod:`robolearn.refine.runner`): :class:`ModeSink` (how a
transition is built), :func:`mode_router` (which buffers it goes to) and :func:`mode_rule` (the updates,
HG-DAgger's behaviour cloning included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from robolearn.refine.learner_side import Buffers, Router, UpdateRule
from robolearn.rl.learner import OffPolicyLearner
from robolearn.rl.replay import Batch, NStepAccumulator, ReplayBuffer, concat_batches, sample_mixed, to_torch


@dataclass(frozen=True)
class ModeSpec:
    """How one method turns steps into learning."""

    reward: Literal["task", "takeover"]
    """task: the env's sparse success reward (or a person's label); takeover: -1 before a takeover, else 0."""
    demo_from_interventions: bool
    """Intervened transitions are also added to the demonstration buffer."""
    online: bool
    """Transitions are added to the online buffer (RL modes)."""
    update: Literal["rl", "bc"]
    """rl: off-policy actor-critic updates; bc: behaviour cloning on the demonstration buffer."""
    deterministic: bool
    """Collect with the deterministic actor (no exploration noise)."""


MODES: dict[str, ModeSpec] = {
    "hil-serl": ModeSpec("task", True, True, "rl", False),
    "rlif": ModeSpec("takeover", False, True, "rl", False),
    "hg-dagger": ModeSpec("task", True, False, "bc", True),
}
"""Mode name -> what it learns from. The explicit registry of HIL methods."""


def mode_spec(name: str) -> ModeSpec:
    if name not in MODES:
        raise ValueError(f"unknown HIL mode {name!r}; choose from {', '.join(MODES)}")
    return MODES[name]


class TransitionBuilder:
    """Per-env steps -> n-step transitions with the mode's reward and an ``intervened`` flag.

    :meth:`push` takes one vector step (shapes as :meth:`NStepAccumulator.push`, plus ``intervened`` and
    ``takeover`` ``(B,)`` bool). Steps are passed on one vector step late: when step ``t + 1`` arrives its
    ``takeover`` decides the RLIF reward of step ``t`` (-1 when a takeover begins at ``t + 1`` in the same
    episode). The returned batch has the replay keys plus ``intervened`` ``(N,)`` bool: a person chose the
    first action of the transition.
    """

    def __init__(self, spec: ModeSpec, num_envs: int, n_step: int, gamma: float) -> None:
        self.spec = spec
        self.acc = NStepAccumulator(num_envs, n_step, gamma)
        self._pending: dict[str, Any] | None = None

    def push(self, obs: Mapping[str, np.ndarray], action: np.ndarray, reward: np.ndarray, terminated: np.ndarray,
             truncated: np.ndarray, next_obs: Mapping[str, np.ndarray], intervened: np.ndarray,
             takeover: np.ndarray) -> Batch | None:
        out = self._release(np.asarray(takeover, bool))
        self._pending = {
            "obs": {k: np.array(v, copy=True) for k, v in obs.items()}, "action": np.array(action, np.float32),
            "reward": np.array(reward, np.float32), "terminated": np.array(terminated, bool),
            "truncated": np.array(truncated, bool), "intervened": np.array(intervened, bool),
            "next_obs": {k: np.array(v, copy=True) for k, v in next_obs.items()},
        }
        return out

    def flush(self) -> Batch | None:
        """Release the held step (no takeover follows it); call before dropping the builder."""
        if self._pending is None:
            return None
        return self._release(np.zeros(len(self._pending["reward"]), bool))

    def _release(self, takeover_next: np.ndarray) -> Batch | None:
        p, self._pending = self._pending, None
        if p is None:
            return None
        done = p["terminated"] | p["truncated"]
        if self.spec.reward == "takeover":
            reward = np.where(takeover_next & ~done, -1.0, 0.0).astype(np.float32)
        else:
            reward = p["reward"]
        # The intervened flag rides through the accumulator as an extra action column.
        flagged = np.concatenate([p["action"], p["intervened"][:, None].astype(np.float32)], axis=1)
        out = self.acc.push(p["obs"], flagged, reward, p["terminated"], p["truncated"], p["next_obs"])
        if out is None:
            return None
        out["intervened"] = out["action"][:, -1] > 0.5
        out["action"] = np.ascontiguousarray(out["action"][:, :-1])
        return out

    def reset(self) -> None:
        """Drop held and partial transitions (after the envs restart)."""
        self._pending = None
        self.acc.reset()


class ModeSink:
    """The loop's sink for a mode: a wrapper step with the intervention wrapper's ``info`` (``critic_action``,
    ``final_obs``, ``intervention``, ``takeover``) into :class:`TransitionBuilder`."""

    def __init__(self, spec: ModeSpec, num_envs: int, n_step: int, gamma: float) -> None:
        self.builder = TransitionBuilder(spec, num_envs, n_step, gamma)

    def push(self, obs: Mapping[str, np.ndarray], reward: np.ndarray, terminated: np.ndarray,
             truncated: np.ndarray, info: Mapping[str, Any]) -> Batch | None:
        return self.builder.push(obs, info["critic_action"], reward, terminated, truncated, info["final_obs"],
                                 info["intervention"], info["takeover"])

    def flush(self) -> Batch | None:
        return self.builder.flush()

    def reset(self) -> None:
        self.builder.reset()


def route(spec: ModeSpec, batch: Batch, online: ReplayBuffer | None, demo: ReplayBuffer | None) -> None:
    """Add a built batch to the buffers the mode uses."""
    def add(buf: ReplayBuffer, rows: np.ndarray) -> None:
        if rows.any():
            buf.add({k: v[rows] for k, v in batch["obs"].items()}, batch["action"][rows], batch["reward"][rows],
                    batch["discount"][rows], {k: v[rows] for k, v in batch["next_obs"].items()})

    every = np.ones(len(batch["reward"]), bool)
    if spec.online and online is not None:
        add(online, every)
    if spec.demo_from_interventions and demo is not None:
        add(demo, np.asarray(batch["intervened"], bool))


def bc_update(learner: OffPolicyLearner, batch: Mapping[str, Any]) -> dict[str, float]:
    """One behaviour-cloning step of the learner's actor on a torch batch (HG-DAgger).

    The actor's deterministic action is mapped to the executed action (``critic_action_fn``: base +
    residual for a residual actor) and regressed onto the stored executed action ``(B, Dc)`` (normalized).
    """
    pred = learner.critic_action_fn(batch["obs"], learner.actor.mode(batch["obs"]))
    loss = F.mse_loss(pred, batch["action"])
    learner.actor_opt.zero_grad(set_to_none=True)
    loss.backward()
    if learner.cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(learner.actor.parameters(), learner.cfg.grad_clip)
    learner.actor_opt.step()
    learner.num_updates += 1
    return {"bc_loss": loss.item()}


def mode_updates(spec: ModeSpec, learner: OffPolicyLearner, online: ReplayBuffer, demo: ReplayBuffer, n: int,
                 rng: np.random.Generator, offline_fraction: float = 0.5, critic_warmup: int = 0,
                 min_size: int = 64) -> dict[str, float]:
    """``n`` updates of the mode's kind; none until the buffers it samples hold ``min_size`` transitions."""
    source = demo if spec.update == "bc" else online
    if n <= 0 or len(source) < min_size:
        return {}
    bs = learner.cfg.batch_size
    if learner.num_updates == 0 and learner.cfg.obs_norm:
        parts = [b.sample(min(len(b), 5_000), rng) for b in (online, demo) if len(b) > 0]
        learner.fit_obs_normalization(to_torch(concat_batches(parts), learner.device)["obs"])
    stats: dict[str, float] = {}
    for _ in range(n):
        if spec.update == "bc":
            stats = bc_update(learner, to_torch(demo.sample(bs, rng), learner.device))
        else:
            batch = sample_mixed(online, demo, bs, rng, offline_fraction, flag=learner.cfg.bc_weight > 0)
            stats = learner.update(to_torch(batch, learner.device), actor=learner.num_updates >= critic_warmup)
    return stats


def mode_router(spec: ModeSpec) -> Router:
    """The loop's router for a mode: :func:`route` into the ``online`` and ``demo`` buffers."""

    def router(batch: Batch, buffers: Buffers) -> None:
        route(spec, batch, buffers["online"], buffers["demo"])

    return router


def mode_rule(spec: ModeSpec, offline_fraction: float, critic_warmup: int, min_size: int) -> UpdateRule:
    """The loop's update rule for a mode: :func:`mode_updates` (owed updates are dropped while the sampled
    buffer holds fewer than ``min_size`` transitions)."""

    def rule(learner: OffPolicyLearner, buffers: Buffers, n: int, rng: np.random.Generator) -> dict[str, float]:
        online, demo = buffers["online"], buffers["demo"]
        assert online is not None and demo is not None
        return mode_updates(spec, learner, online, demo, n, rng, offline_fraction, critic_warmup, min_size)

    return rule
