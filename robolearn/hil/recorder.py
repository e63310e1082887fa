"""Every HIL episode, with who was in control at each step, written to a robolearn dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class EpisodeRecorder:
    """Buffers each env's steps and writes every finished episode to a robolearn dataset."""

    def __init__(self, writer: Any, num_envs: int, meta: Mapping[str, Any]) -> None:
        self.writer, self.meta = writer, dict(meta)
        self.steps: list[list[dict[str, Any]]] = [[] for _ in range(num_envs)]

    def add(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], reward: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        """One vector step: ``obs`` the observation acted on, ``info`` the intervention wrapper's."""
        done = terminated | truncated
        for i, rows in enumerate(self.steps):
            rows.append({"obs": {k: np.asarray(v[i]) for k, v in obs.items()}, "action": info["executed"][i],
                         "reward": float(reward[i]), "success": bool(info["is_success"][i]),
                         "intervention": bool(info["intervention"][i])})
            if done[i]:
                self._commit(i, bool(terminated[i]), bool(truncated[i]))

    def _commit(self, i: int, terminated: bool, truncated: bool) -> None:
        rows, self.steps[i] = self.steps[i], []
        self.writer.begin_episode(meta=self.meta)
        self.writer.add_steps({k: np.stack([r["obs"][k] for r in rows]) for k in rows[0]["obs"]},
                              np.stack([r["action"] for r in rows]), np.array([r["reward"] for r in rows]),
                              np.array([r["success"] for r in rows]), np.array([r["intervention"] for r in rows]))
        self.writer.end_episode(success=rows[-1]["success"], terminated=terminated, truncated=truncated)
