"""Replay: a ring buffer of n-step transitions, the per-env n-step accumulator and RLPD 50/50 sampling.

A stored transition is ``(obs, action, reward, discount, next_obs)`` where, for an n-step transition
starting at ``t`` and covering ``k <= n`` steps, ``reward = sum_{i<k} gamma^i r_{t+i}`` and
``discount = gamma^k`` if the episode can continue after ``t+k`` (no end, or a time-out: truncation
bootstraps from the final observation) and ``0`` if it terminated. The TD target is then simply
``reward + discount * V(next_obs)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Batch = dict[str, Any]
"""``{"obs": {key: (N, ...)}, "action": (N, Da), "reward": (N,), "discount": (N,), "next_obs": {...}}``."""


def _obs_dtype(key: str, shape: Sequence[int]) -> type:
    return np.uint8 if key.startswith("pixels") and len(shape) == 3 else np.float32


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions with dict observations (numpy storage, CPU)."""

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], action_dim: int, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs_shapes = {k: tuple(int(d) for d in s) for k, s in obs_shapes.items()}
        self.action_dim = int(action_dim)
        self.obs = {k: np.zeros((capacity, *s), _obs_dtype(k, s)) for k, s in self.obs_shapes.items()}
        self.next_obs = {k: np.zeros((capacity, *s), _obs_dtype(k, s)) for k, s in self.obs_shapes.items()}
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.discount = np.zeros(capacity, np.float32)
        self.size = 0
        self.pos = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Mapping[str, np.ndarray], action: np.ndarray, reward: np.ndarray, discount: np.ndarray,
            next_obs: Mapping[str, np.ndarray]) -> None:
        """Append ``N`` transitions: obs values ``(N, ...)``, action ``(N, Da)``, reward/discount ``(N,)``."""
        action = np.asarray(action, np.float32).reshape(-1, self.action_dim)
        n = len(action)
        missing = set(self.obs_shapes) - set(obs)
        if missing:
            raise KeyError(f"replay add: observation lacks keys {sorted(missing)}")
        idx = (self.pos + np.arange(n)) % self.capacity
        for k in self.obs_shapes:
            self.obs[k][idx] = obs[k]
            self.next_obs[k][idx] = next_obs[k]
        self.action[idx] = action
        self.reward[idx] = np.asarray(reward, np.float32).reshape(n)
        self.discount[idx] = np.asarray(discount, np.float32).reshape(n)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, batch_size)
        return {
            "obs": {k: v[idx] for k, v in self.obs.items()},
            "next_obs": {k: v[idx] for k, v in self.next_obs.items()},
            "action": self.action[idx], "reward": self.reward[idx], "discount": self.discount[idx],
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays (only the filled part) for ``np.savez``."""
        n = self.size
        out = {"meta": np.array([self.capacity, self.size, self.pos, self.action_dim], np.int64),
               "action": self.action[:n], "reward": self.reward[:n], "discount": self.discount[:n]}
        for k in self.obs_shapes:
            out[f"obs/{k}"] = self.obs[k][:n]
            out[f"next_obs/{k}"] = self.next_obs[k][:n]
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        capacity, size, pos, action_dim = (int(x) for x in state["meta"])
        if capacity != self.capacity or action_dim != self.action_dim:
            raise ValueError(f"replay state has capacity {capacity}, action_dim {action_dim}; this buffer has "
                             f"{self.capacity}, {self.action_dim}")
        self.size, self.pos = size, pos
        self.action[:size] = state["action"]
        self.reward[:size] = state["reward"]
        self.discount[:size] = state["discount"]
        for k in self.obs_shapes:
            self.obs[k][:size] = state[f"obs/{k}"]
            self.next_obs[k][:size] = state[f"next_obs/{k}"]


def sample_mixed(online: ReplayBuffer, offline: ReplayBuffer | None, batch_size: int,
                 rng: np.random.Generator, offline_fraction: float = 0.5, flag: bool = False) -> Batch:
    """RLPD symmetric sampling: ``offline_fraction`` of the batch from ``offline`` (when it holds data).

    With ``flag`` the batch also has ``offline`` ``(B,)`` bool: the row came from ``offline``."""
    if offline is None or len(offline) == 0:
        out, n_off = online.sample(batch_size, rng), 0
    elif len(online) == 0:
        out, n_off = offline.sample(batch_size, rng), batch_size
    else:
        n_off = int(round(batch_size * offline_fraction))
        out = concat_batches([online.sample(batch_size - n_off, rng), offline.sample(n_off, rng)])
    if flag:  # the offline rows are the last n_off
        out["offline"] = np.arange(batch_size) >= batch_size - n_off
    return out


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """Concatenate batches along the first axis."""
    first = batches[0]
    out: Batch = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = {k: np.concatenate([b[key][k] for b in batches]) for k in value}
        else:
            out[key] = np.concatenate([b[key] for b in batches])
    return out


def to_torch(batch: Batch, device: torch.device | str = "cpu") -> Batch:
    """A numpy batch as torch tensors on ``device`` (nested dicts kept)."""
    return {k: ({kk: torch.as_tensor(vv, device=device) for kk, vv in v.items()} if isinstance(v, dict)
                else torch.as_tensor(v, device=device)) for k, v in batch.items()}


@dataclass
class _Step:
    obs: dict[str, np.ndarray]
    action: np.ndarray
    reward: float


class NStepAccumulator:
    """Turns per-env 1-step experience from a batched env into n-step transitions.

    Call :meth:`push` once per vector step with the batch (``B`` envs). Each env keeps a queue of its last
    ``n`` steps; a transition is emitted when the queue is full (bootstrapping from ``next_obs``), and at an
    episode end every queued step is flushed: with discount 0 after a termination, with ``gamma^k`` from
    the final observation after a truncation (time-out). ``next_obs`` must be the episode's *final*
    observation for envs that ended (``infos["final_obs"]`` under same-step autoreset).
    """

    def __init__(self, num_envs: int, n_step: int, gamma: float) -> None:
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.n, self.gamma = n_step, gamma
        self.queues: list[deque[_Step]] = [deque() for _ in range(num_envs)]

    def reset(self) -> None:
        """Drop every partial transition (e.g. after a resume, when the envs restart)."""
        for q in self.queues:
            q.clear()

    def _emit(self, q: deque[_Step], next_obs: dict[str, np.ndarray], terminal: bool, out: list) -> None:
        ret = sum(self.gamma**i * s.reward for i, s in enumerate(q))
        disc = 0.0 if terminal else self.gamma ** len(q)
        head = q.popleft()
        out.append((head.obs, head.action, ret, disc, next_obs))

    def push(self, obs: Mapping[str, np.ndarray], action: np.ndarray, reward: np.ndarray, terminated: np.ndarray,
             truncated: np.ndarray, next_obs: Mapping[str, np.ndarray]) -> Batch | None:
        """Add one vector step; returns the transitions completed by it as a batch (None if none).

        Shapes: obs/next_obs values ``(B, ...)``, action ``(B, Da)``, reward/terminated/truncated ``(B,)``.
        """
        out: list = []
        for i, q in enumerate(self.queues):
            q.append(_Step({k: np.array(v[i]) for k, v in obs.items()}, np.array(action[i]), float(reward[i])))
            nxt = {k: np.array(v[i]) for k, v in next_obs.items()}
            if terminated[i] or truncated[i]:
                while q:
                    self._emit(q, nxt, bool(terminated[i]), out)
            elif len(q) == self.n:
                self._emit(q, nxt, False, out)
        if not out:
            return None
        keys = list(obs)
        return {
            "obs": {k: np.stack([t[0][k] for t in out]) for k in keys},
            "action": np.stack([t[1] for t in out]).astype(np.float32),
            "reward": np.array([t[2] for t in out], np.float32),
            "discount": np.array([t[3] for t in out], np.float32),
            "next_obs": {k: np.stack([t[4][k] for t in out]) for k in keys},
        }

