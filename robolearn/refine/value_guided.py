"""V-GPS (value-guided policy steering): draw ``K`` action chunks from a frozen generative base and execute the
one a learned Q-function ranks best. Nothing flows back through the base; only its ``act(obs, noise)`` is used.

* :class:`TiledBase` keeps ``K`` replicas of every env's row in one base instance (the observation tiled
  ``K`` times), so each replica holds that env's observation history and one batched ``act`` call draws the
  ``K`` candidates ``(B, K, Ta, Da)`` from ``K`` initial noises per env (the first one zero, optionally:
  the base's zero-noise chunk is always a candidate).
* :class:`ValueGuidedVecEnv` is the chunk-level wrapper (a :class:`NoiseSteeringVecEnv` that stores executed
  chunks): its observation carries the candidates, normalized and flattened, under ``candidates``
  ``(B, K, Ta * Da)``; its action ``(B, K)`` is a preference over them (the arg-max is executed).
* :class:`ValueGuidedLearner` trains ``Q(s, chunk)`` with an IQL-style in-sample backup (a state value
  ``V(s)`` fitted as an upper expectile of ``Q``, and ``Q``'s target ``r + gamma V(s')``), so demonstrations
  and any executed chunk train it without sampling the base in the update; acting ranks the candidates by
  the minimum over the Q heads.
* :class:`ValueGuidedPolicy` is the refined policy: base + Q-function, ``K`` draws per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robolearn.core.batch import batch_size
from robolearn.core.protocols import Obs, Policy
from robolearn.refine.common import ActionScaler, torch_obs
from robolearn.refine.noise_steering import NoiseSteeringVecEnv, check_generative
from robolearn.rl.devices import module_device
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.networks import CriticEnsemble, ObsEncoder
from robolearn.rl.optim import adam, load_adam_state

CANDIDATES_KEY = "candidates"


class TiledBase:
    """A generative base run on ``K`` replicas of each env row (row ``i`` of the envs is rows ``i*K .. i*K+K-1``
    of the base); :meth:`candidates` draws one chunk per replica."""

    def __init__(self, base: Policy, k: int, noise_scale: float, include_zero: bool, seed: int) -> None:
        self.base, self.k = base, int(k)
        self.noise_shape = check_generative(base)
        self.noise_scale, self.include_zero = float(noise_scale), bool(include_zero)
        self.rng = np.random.default_rng(seed)

    def tile(self, obs: Obs) -> dict[str, np.ndarray]:
        return {key: np.repeat(np.asarray(v), self.k, axis=0) for key, v in obs.items()}

    def noises(self, b: int) -> np.ndarray:
        """``(B * K, *noise_shape)``: ``noise_scale`` times standard normal; replica 0 zero with ``include_zero``."""
        noise = self.noise_scale * self.rng.standard_normal((b, self.k, *self.noise_shape)).astype(np.float32)
        if self.include_zero:
            noise[:, 0] = 0.0
        return noise.reshape(b * self.k, *self.noise_shape)

    def candidates(self, obs: Obs) -> np.ndarray:
        """Observe ``obs`` ``{key: (B, ...)}`` and draw ``(B, K, Ta, Da)`` physical chunks."""
        b = batch_size(obs)
        chunks = np.asarray(self.base.act(self.tile(obs), self.noises(b)), np.float32)
        return chunks.reshape(b, self.k, *chunks.shape[1:])

    def observe(self, obs: Obs) -> None:
        if hasattr(self.base, "observe"):
            self.base.observe(self.tile(obs))

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        if env_ids is None:
            self.base.reset(None)
            return
        ids = np.asarray(env_ids, np.int64).reshape(-1, 1)
        self.base.reset((ids * self.k + np.arange(self.k)).reshape(-1))


def normalized_candidates(chunks: np.ndarray, scaler: ActionScaler) -> np.ndarray:
    """``(B, K, Ta, Da)`` physical -> ``(B, K, Ta * Da)`` clipped to the bounds and normalized to ``[-1, 1]``."""
    b, k = chunks.shape[:2]
    return np.clip(scaler.normalize(np.clip(chunks, scaler.low, scaler.high)), -1, 1).reshape(b, k, -1)


class ValueGuidedVecEnv(NoiseSteeringVecEnv):
    """Chunk-level wrapper whose action ``(B, K)`` picks one of ``K`` base candidates (see module docstring).

    ``obs_shapes`` (what replay and the networks see) leaves the candidates out; the observations returned
    by :meth:`reset` and :meth:`step` carry them for the acting policy."""

    def __init__(self, venv: gym.vector.VectorEnv, tiled: TiledBase, chunk_dim: int, params: Any) -> None:
        super().__init__(venv, tiled, bound=1.0, chunk_dim=chunk_dim)  # type: ignore[arg-type]
        self.tiled, self.params = tiled, params
        """``params``: the method's settings (the learner reads ``expectile`` and ``epsilon``)."""
        self.action_dim = tiled.k
        self._candidates = np.zeros((venv.num_envs, tiled.k, 1, 1), np.float32)

    def _with_candidates(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._candidates = self.tiled.candidates(obs)
        return obs | {CANDIDATES_KEY: normalized_candidates(self._candidates, self.scaler)}

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        return self._with_candidates(super().reset(seed=seed))

    def step(self, action: np.ndarray, override: np.ndarray | None = None
             ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Execute the candidate with the largest preference in ``action`` ``(B, K)`` (or ``override``)."""
        pick = np.asarray(action, np.float32).reshape(self.num_envs, self.action_dim).argmax(-1)
        chunk = override if override is not None else self._candidates[np.arange(self.num_envs), pick]
        obs, reward, terminated, truncated, info = super().step(np.zeros_like(action), override=chunk)
        info["candidate"] = pick
        return self._with_candidates(obs), reward, terminated, truncated, info


class CandidateScorer(nn.Module):
    """``Q(s, chunk)`` heads that rank candidates; an actor to the loop (``action_dim = K``, deterministic):
    :meth:`mode` is the one-hot preference ``(B, K)`` in ``{-1, 1}`` of the best-ranked candidate."""

    stochastic = False

    def __init__(self, critic: CriticEnsemble, k: int) -> None:
        super().__init__()
        self.critic, self.action_dim = critic, int(k)

    def scores(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(B, K)``: the minimum over heads of ``Q(s, candidate_k)`` (``obs`` holds ``candidates``)."""
        cands = obs[CANDIDATES_KEY]
        b, k = cands.shape[:2]
        tiled = {key: v.repeat_interleave(k, 0) for key, v in obs.items() if key != CANDIDATES_KEY}
        q = self.critic(tiled, cands.reshape(b * k, -1).float()).squeeze(-1)
        return q.min(0).values.reshape(b, k)

    def choice(self, index: torch.Tensor) -> torch.Tensor:
        """Preferences ``(B, K)``: 1 at ``index`` ``(B,)``, -1 elsewhere (on ``index``'s device)."""
        out = -torch.ones(len(index), self.action_dim, device=index.device)
        out[torch.arange(len(index), device=index.device), index] = 1.0
        return out

    def mode(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.choice(self.scores(obs).argmax(-1))


class ValueGuidedLearner(OffPolicyLearner):
    """``Q(s, chunk)`` by an IQL backup, ``V(s)`` by expectile regression; ``self.actor`` ranks candidates."""

    def __init__(self, cfg: LearnerConfig, obs_shapes: Mapping[str, Sequence[int]], k: int, chunk_dim: int,
                 expectile: float, epsilon: float, seed: int = 0, device: str | torch.device = "cpu") -> None:
        if cfg.hl_gauss.enabled:
            raise ValueError("V-GPS regresses Q on V(s'); set learner.hl_gauss.enabled: false")
        super().__init__(cfg, obs_shapes, k, critic_action_dim=chunk_dim, seed=seed, device=device)
        self.expectile, self.epsilon = float(expectile), float(epsilon)
        self.actor = CandidateScorer(self.critic, k)
        self.value = CriticEnsemble(obs_shapes, 0, cfg.hidden, 1).to(self.device)
        self.value_opt = adam(self.value.parameters(), cfg.critic_lr)

    def v(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``V(s)`` ``(B,)``."""
        empty = torch.zeros(batch_size(obs), 0, device=self.device)
        return self.value(obs, empty)[0, :, 0]

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool, rng: np.random.Generator | None = None
            ) -> np.ndarray:
        """Preferences ``(B, K)``: the best-ranked candidate; while collecting, a uniformly random one with
        probability ``epsilon``."""
        scores = self.actor.scores(torch_obs(obs, self.device))
        index = scores.argmax(-1).cpu()
        if not deterministic and self.epsilon > 0:
            rng = rng or np.random.default_rng()
            explore = torch.as_tensor(rng.random(len(index)) < self.epsilon)
            index = torch.where(explore, torch.as_tensor(rng.integers(0, self.action_dim, len(index))), index)
        return self.actor.choice(index).numpy()

    def train_step(self, batch: Mapping[str, Any], actor: bool = True) -> dict[str, torch.Tensor]:
        """One Q step (target ``r + discount * V(s')``) and one V step (expectile of the target heads' min)."""
        with torch.no_grad():
            target = batch["reward"] + batch["discount"] * self.v(batch["next_obs"])
            q_target = self.critic_target(batch["obs"], batch["action"]).squeeze(-1).min(0).values
        q = self.critic(batch["obs"], batch["action"]).squeeze(-1)
        critic_loss = (q - target.unsqueeze(0)).pow(2).mean()
        self._step(self.critic_opt, critic_loss, self.critic.parameters())
        diff = q_target - self.v(batch["obs"])
        weight = torch.abs(self.expectile - (diff < 0).float())
        value_loss = (weight * diff.pow(2)).mean()
        self._step(self.value_opt, value_loss, self.value.parameters())
        self._polyak(self.critic, self.critic_target)
        self.num_updates += 1
        return {"critic_loss": critic_loss.detach(), "value_loss": value_loss.detach(),
                "q_mean": q.detach().mean(), "target_mean": target.mean()}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"value": self.value.state_dict(), "value_opt": self.value_opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.value.load_state_dict(state["value"])
        load_adam_state(self.value_opt, state["value_opt"])


class ValueGuidedPolicy:
    """The refined policy: ``K`` base chunks per replan, the best-ranked one executed ``(B, Ta, Da)``."""

    noise_shape = None

    def __init__(self, base: Policy, scorer: CandidateScorer, action_space: gym.spaces.Box, noise_scale: float,
                 include_zero: bool, seed: int = 0) -> None:
        self.tiled = TiledBase(base, scorer.action_dim, noise_scale, include_zero, seed)
        self.scorer, self.scaler = scorer, ActionScaler(action_space)
        self._device = module_device(scorer)

    @torch.no_grad()
    def act(self, obs: Obs, noise: np.ndarray | None = None) -> np.ndarray:
        """The best-ranked of ``K`` candidates for ``obs`` (``noise`` is ignored: the policy draws its own); the
        scorer runs on its device, observations in and the chunk out as numpy."""
        chunks = self.tiled.candidates(obs)
        cands = normalized_candidates(chunks, self.scaler)
        t = torch_obs({**obs, CANDIDATES_KEY: cands}, self._device)
        pick = self.scorer.scores(t).argmax(-1).cpu().numpy()
        return chunks[np.arange(len(pick)), pick]

    def observe(self, obs: Obs) -> None:
        self.tiled.observe(obs)

    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        self.tiled.reset(env_ids)


def load_scorer(state: Mapping[str, torch.Tensor], obs_shapes: Mapping[str, Sequence[int]], k: int,
                hidden: Sequence[int]) -> CandidateScorer:
    """A :class:`CandidateScorer` from its saved weights (heads and chunk size read from their shapes)."""
    first = state.get("critic.net.0.weight")  # (E, features + chunk_dim, width)
    if not isinstance(first, torch.Tensor) or first.ndim != 3:
        raise ValueError("not a V-GPS Q-function: 'critic.net.0.weight' (heads, inputs, width) is missing; "
                         "load a refined-policy directory written by `robolearn refine --method vgps`")
    heads, in_dim = int(first.shape[0]), int(first.shape[1])
    critic = CriticEnsemble(obs_shapes, in_dim - ObsEncoder(obs_shapes).out_dim, hidden, heads)
    scorer = CandidateScorer(critic, k)
    scorer.load_state_dict(dict(state))
    scorer.eval()
    return scorer
