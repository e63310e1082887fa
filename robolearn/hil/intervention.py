"""The intervention wrapper: a person (teleop device or simulated human) may take control at any step.

:class:`InterventionVecEnv` wraps a refinement wrapper (:class:`~robolearn.refine.residual.ResidualVecEnv`
or :class:`~robolearn.refine.direct.DirectVecEnv`, batched over ``B`` envs) and an
:class:`~robolearn.hil.sim_human.Intervener`. At each step it computes the physical action the policy
proposes, asks the intervener, and executes the person's action where they took over through the
wrapper's ``override`` path, so that ``info["critic_action"]`` (what replay stores) is the executed
action. Besides the wrapped info it adds, per env:

``intervention`` ``(B,)`` bool
    a person was in control at this step (who was in control: True = human, False = policy);
``intervention_action`` ``(B, Da)`` float32
    the executed human action in physical units (NaN rows where the policy was in control);
``takeover`` ``(B,)`` bool
    this step is the first of an intervention (RLIF penalises the step before it);
``proposed`` / ``executed`` ``(B, Da)`` float32
    the policy's physical action and the physical action executed.

A success labeller (a key or button on a real robot, HIL-SERL's sparse reward) may end an episode with a
label: success gives reward 1 and ``terminated``, failure gives ``truncated``. Labels need ``B == 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from robolearn.hil.sim_human import Intervener
from robolearn.refine.direct import DirectVecEnv
from robolearn.refine.residual import ResidualVecEnv

SuccessLabeler = Callable[[], "bool | None"]
"""Called once per step (``B == 1``): True = the person labelled success, False = failure, None = nothing."""


def proposed_action(env: Any, action: np.ndarray) -> np.ndarray:
    """The physical action ``(B, Da)`` that ``env.step(action)`` would execute without an override."""
    action = np.asarray(action, np.float32).reshape(env.num_envs, env.action_dim)
    if isinstance(env, ResidualVecEnv):
        return env.correct(env._base_phys, action)  # the base action of the current step  # noqa: SLF001
    if isinstance(env, DirectVecEnv):
        return env.scaler.unnormalize(np.clip(action, -1, 1)).astype(np.float32)
    raise TypeError(f"interventions need a ResidualVecEnv or DirectVecEnv wrapper, got {type(env).__name__}")


class InterventionVecEnv:
    """A refinement wrapper in which ``intervener`` may take over any env at any step.

    It keeps the wrapper contract of :mod:`robolearn.refine.common` (``obs_shapes``, ``action_dim``,
    ``critic_action_dim``, ``critic_action_fn``, ``reset``, ``step``), so the refinement learner and
    evaluation run on it unchanged.
    """

    def __init__(self, env: Any, intervener: Intervener, success_labeler: SuccessLabeler | None = None) -> None:
        if success_labeler is not None and env.num_envs != 1:
            raise ValueError(f"success labels come from one person watching one robot: num_envs must be 1, "
                             f"got {env.num_envs}")
        self.env, self.intervener, self.success_labeler = env, intervener, success_labeler
        self.num_envs = env.num_envs
        self.obs_shapes = env.obs_shapes
        self.action_dim, self.critic_action_dim = env.action_dim, env.critic_action_dim
        self.critic_action_fn = env.critic_action_fn
        self.scaler = env.scaler
        self.venv = env.venv
        self._obs: dict[str, np.ndarray] = {}
        self._prev = np.zeros(self.num_envs, bool)

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        self._obs = self.env.reset(seed=seed)
        self.intervener.reset(None)
        self._prev[:] = False
        return self._obs

    def step(self, action: np.ndarray, override: np.ndarray | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step; ``override`` (physical ``(B, Da)``) is a caller's own override and wins over the person."""
        proposed = proposed_action(self.env, action) if override is None else np.asarray(override, np.float32)
        mask, human = self.intervener.decide(self._obs, proposed)
        mask = np.asarray(mask, bool).reshape(self.num_envs)
        if override is None and mask.any():
            override = np.where(mask[:, None], np.asarray(human, np.float32), proposed)
        else:
            mask = np.zeros(self.num_envs, bool) if override is not None else mask
        obs, reward, terminated, truncated, info = self.env.step(action, override=override)
        executed = self.scaler.unnormalize(info["critic_action"]) if "executed" not in info else info["executed"]
        executed = np.asarray(executed, np.float32)
        info = dict(info, intervention=mask, takeover=mask & ~self._prev, proposed=proposed, executed=executed,
                    intervention_action=np.where(mask[:, None], executed, np.nan).astype(np.float32))
        if self.success_labeler is not None:
            obs, reward, terminated, truncated = self._apply_label(obs, reward, terminated, truncated, info)
        done = np.logical_or(terminated, truncated)
        self._prev = mask & ~done
        if done.any():
            self.intervener.reset(np.nonzero(done)[0])
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def _apply_label(self, obs: dict[str, np.ndarray], reward: np.ndarray, terminated: np.ndarray,
                     truncated: np.ndarray, info: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        """End the (single) episode on a person's label; the env then restarts."""
        label = self.success_labeler() if self.success_labeler is not None else None
        if label is None or terminated[0] or truncated[0]:
            return obs, reward, terminated, truncated
        info["final_obs"] = {k: np.array(v, copy=True) for k, v in obs.items()}
        info["is_success"] = np.array([bool(label)])
        info["labelled"] = True
        reward = np.array([1.0 if label else 0.0], np.float32)
        terminated, truncated = np.array([bool(label)]), np.array([not label])
        return self.env.reset(), reward, terminated, truncated

    def close(self) -> None:
        self.env.close()


def success_labeler_from_events(take_events: Callable[[], list[Any]]) -> SuccessLabeler:
    """A labeller reading teleop session events: SUCCESS -> True, FAILURE -> False (the latest one wins)."""
    from robolearn.teleop.base import TeleopEvent

    def label() -> bool | None:
        out = None
        for ev in take_events():
            if ev is TeleopEvent.SUCCESS:
                out = True
            elif ev is TeleopEvent.FAILURE:
                out = False
        return out

    return label


def who(mask: Mapping[str, Any] | np.ndarray) -> list[str]:
    """``["human" | "policy"]`` per env from an ``info["intervention"]`` mask."""
    return ["human" if m else "policy" for m in np.asarray(mask, bool)]
