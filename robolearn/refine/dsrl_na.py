"""DSRL-NA (noise aliasing): an action-space critic, a noise-space critic distilled from it, a noise actor.

* ``Q_A(s, chunk)`` is trained by TD on executed chunks (normalized, flattened ``(Ta * Da,)``), so any
  ``(s, a, r, s')`` data, demonstrations included, is usable; its target decodes the actor's next noise
  through the black-box base: ``chunk' = base.act(s', bound * pi(s'))``.
* ``Q_W(s, w)`` regresses ``mean_e Q_A,e(s, base.act(s, bound * w))`` on noise ``w`` drawn half from the
  actor and half uniformly from ``[-1, 1]``.
* The SAC actor over ``w`` maximises ``Q_W``.

Decoding replay batches uses a private copy of the base (``copy.deepcopy``), reset before each call, so the
copy that drives the envs keeps its per-env state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from robolearn.core.protocols import Policy
from robolearn.refine.common import ActionScaler
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.networks import CriticEnsemble
from robolearn.rl.optim import adam, load_adam_state


class ChunkDecoder:
    """``(obs batch, normalized noise (B, Dn)) -> normalized flattened chunk (B, Ta * Da)`` via the base."""

    def __init__(self, base: Policy, scaler: ActionScaler, bound: float) -> None:
        self.base, self.scaler, self.bound = copy.deepcopy(base), scaler, bound
        self.noise_shape = tuple(base.noise_shape)

    @torch.no_grad()
    def __call__(self, obs: Mapping[str, torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        obs_np = {k: v.cpu().numpy() for k, v in obs.items()}
        noise = (self.bound * w.clamp(-1, 1)).cpu().numpy().reshape(len(w), *self.noise_shape)
        self.base.reset()
        chunk = np.asarray(self.base.act(obs_np, noise), np.float32)
        norm = np.clip(self.scaler.normalize(chunk), -1, 1).reshape(len(w), -1)
        return torch.as_tensor(norm, device=w.device)


class NoiseAliasingLearner(OffPolicyLearner):
    """SAC actor over noise with DSRL-NA critics; ``self.critic`` is ``Q_A``, ``self.noise_critic`` is ``Q_W``."""

    def __init__(self, cfg: LearnerConfig, obs_shapes: Mapping[str, Sequence[int]], noise_dim: int,
                 chunk_dim: int, decoder: ChunkDecoder, seed: int = 0, device: str | torch.device = "cpu") -> None:
        if cfg.algo != "sac":
            raise ValueError("DSRL-NA uses a SAC noise actor; set learner.algo: sac")
        super().__init__(cfg, obs_shapes, noise_dim, critic_action_dim=chunk_dim, seed=seed, device=device)
        self.decoder = decoder
        self.noise_critic = CriticEnsemble(obs_shapes, noise_dim, cfg.hidden, cfg.num_critics).to(self.device)
        self.noise_critic.matmul_dtype = self.critic.matmul_dtype
        self.noise_opt = adam(self.noise_critic.parameters(), lr=cfg.critic_lr)
        self.critic_action_fn = self.decoder

    def update_noise_critic(self, obs: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Distil ``Q_A`` into ``Q_W`` on actor and uniform noise."""
        b = next(iter(obs.values())).shape[0]
        with torch.no_grad():
            w_pi = self.actor.sample(obs, self.gen)[0][: b // 2]
            w_uni = torch.rand((b - len(w_pi), self.action_dim), generator=self.gen) * 2 - 1
            w = torch.cat([w_pi, w_uni.to(w_pi.device)])
            target = self.q_values(self.critic, obs, self.decoder(obs, w)).mean(0)
        q = self.noise_critic(obs, w).squeeze(-1)
        loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q))
        self._step(self.noise_opt, loss, self.noise_critic.parameters())
        return {"noise_critic_loss": loss.item(), "noise_q_mean": q.mean().item()}

    def update_actor(self, obs: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """SAC actor step on ``Q_W`` (the base is not differentiable, so the actor never sees ``Q_A``)."""
        for p in self.noise_critic.parameters():
            p.requires_grad_(False)
        w, logp = self.actor.sample(obs, self.gen)
        q = self.noise_critic(obs, w).squeeze(-1).mean(0)
        loss = (self.alpha * logp - q).mean()
        self._step(self.actor_opt, loss, self.actor.parameters())
        for p in self.noise_critic.parameters():
            p.requires_grad_(True)
        stats = {"actor_loss": loss.item(), "entropy": -logp.mean().item(), "alpha": float(self.alpha)}
        if self.cfg.learn_alpha:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            self._step(self.alpha_opt, alpha_loss, [self.log_alpha])
        return stats

    def update(self, batch: Mapping[str, Any], actor: bool = True) -> dict[str, float]:
        stats = self.update_critic(batch)
        self.num_updates += 1
        stats.update(self.update_noise_critic(batch["obs"]))
        if actor and self.num_updates % self.cfg.actor_delay == 0:
            stats.update(self.update_actor(batch["obs"]))
        self._polyak(self.critic, self.critic_target)
        return stats

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"noise_critic": self.noise_critic.state_dict(),
                                       "noise_opt": self.noise_opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.noise_critic.load_state_dict(state["noise_critic"])
        load_adam_state(self.noise_opt, state["noise_opt"])
