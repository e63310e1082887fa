"""One off-policy learner with SAC and TD3 update rules, a REDQ critic ensemble and LayerNorm networks.

The learner works in a normalized action space ``[-1, 1]^Da`` (the actor's output). The critic may score
a different action than the actor emits: ``critic_action_fn(obs, actor_action)`` maps the actor's action
to the action the critic sees (a residual actor's correction -> the executed action). Replay stores
critic-space actions. Targets use the min over ``num_min`` randomly chosen target heads (REDQ); the actor
maximises the mean over all heads.

An update is a handful of batched matmuls plus multi-tensor optimizer kernels: the critic heads are one
stacked ensemble (:class:`~robolearn.rl.networks.CriticEnsemble`), the target evaluates only the REDQ heads it
takes the min over, Adam is fused, clipping and the target-network update are one call each, and the
statistics stay tensors (:meth:`OffPolicyLearner.train_step`) until a caller reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from robolearn.rl.augment import augment_obs
from robolearn.rl.devices import resolve_device
from robolearn.rl.losses import HLGauss, HLGaussConfig
from robolearn.rl.networks import Actor, CriticEnsemble, ObsEncoder
from robolearn.rl.optim import adam, clip_grad_norm_, load_adam_state, polyak_

CriticActionFn = Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]
TensorStats = dict[str, torch.Tensor]
"""Training statistics as 0-dim tensors (no host read until :func:`to_floats`)."""


def to_floats(stats: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """0-dim tensor statistics as Python floats, read from the device in one transfer."""
    if not stats:
        return {}
    values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
    return dict(zip(stats, values, strict=True))


@dataclass
class LearnerConfig:
    """Off-policy learner hyper-parameters."""

    algo: Literal["sac", "td3"] = "sac"
    """Update rule: sac (entropy-regularised, stochastic actor) or td3 (deterministic actor)."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden widths of actor and critic MLPs."""
    num_critics: int = 2
    """Critic ensemble size (1-10)."""
    num_min: int = 2
    """Target = min over this many randomly chosen target heads (REDQ); <= num_critics."""
    gamma: float = 0.99
    """Discount per (wrapper) step."""
    tau: float = 0.005
    """Polyak rate of the target critics (and TD3 target actor)."""
    actor_lr: float = 3e-4
    """Actor learning rate."""
    critic_lr: float = 3e-4
    """Critic learning rate."""
    batch_size: int = 256
    """Transitions per gradient update."""
    actor_delay: int = 1
    """Actor (and TD3 target) update every this many critic updates."""
    init_alpha: float = 0.1
    """SAC: initial entropy temperature."""
    target_entropy: float | None = None
    """SAC: entropy target (default -Da)."""
    learn_alpha: bool = True
    """SAC: tune the temperature to the entropy target."""
    backup_entropy: bool = False
    """SAC: include the entropy bonus ``-alpha * log pi`` in the critic's target (soft Q). Off by default: with
    a sparse 0/1 reward and a high-dimensional action (DSRL's noise: ``Ta * Da`` dimensions) the bonus
    dwarfs the reward and the soft Q fits mostly entropy, and the actor collapses (docs/known-problems.md).
    The actor's loss keeps its entropy term either way."""
    exploration_noise: float = 0.1
    """TD3: Gaussian std added to actions while collecting (normalized units)."""
    target_noise: float = 0.2
    """TD3: target policy smoothing noise std."""
    target_noise_clip: float = 0.5
    """TD3: clip of the smoothing noise."""
    zero_init_actor: bool = False
    """Zero the actor's last layer (residual actors start at a zero correction)."""
    drq_pad: int = 4
    """DrQ random shift (pixels) for pixel keys; 0 disables."""
    hl_gauss: HLGaussConfig = field(default_factory=HLGaussConfig)
    """Optional classification critic loss."""
    grad_clip: float = 10.0
    """Gradient-norm clip for actor and critic (0 disables)."""
    obs_norm: bool = True
    """Standardise state observations with the mean / std of the replay data at the first update (then
    frozen, and saved with the actor)."""
    actor_l2: float = 0.0
    """Penalty on the squared actor output, TD3+BC style: the actor minimises ``-Q / mean|Q| + actor_l2 *
    mean(a^2)``. For a residual actor ``a`` is the correction, so it moves away from the base only where the
    critic's gain outweighs the penalty (0 disables: plain ``-Q``)."""
    matmul_dtype: Literal["float32", "bfloat16"] = "float32"
    """Precision of the hidden layers' matrix products in actor and critics (weights, optimizer state, output
    layers and losses stay float32; :func:`~robolearn.rl.networks.run_hidden_then_output`). ``bfloat16``
    runs an update 2-3x faster on CPUs with AVX512-BF16 or AMX and on recent GPUs
    (``bench/learner_throughput.py``); measure a task's success with it before making it a preset's."""
    bc_weight: float = 0.0
    """Behaviour cloning on the demonstration rows of a batch (its ``offline`` mask, ``(B,)`` bool): the actor
    also minimises ``bc_weight * mean |executed(pi(s)) - a|^2`` over them, with Q normalised by its batch
    magnitude as with ``actor_l2`` (TD3+BC; HIL-SERL runs use it to follow a person's corrections while the
    critic is still learning). 0 disables."""


class OffPolicyLearner:
    """SAC / TD3 with a critic ensemble; all state is in :meth:`state_dict` for checkpoints.

    ``device`` is a device setting (``auto``, ``cpu``, ``cuda[:N]``, ``mps``;
    :func:`~robolearn.rl.devices.resolve_device`) or a ``torch.device``: networks, optimizer state and the
    batches of :meth:`update` live there, while the sampling generator stays on the CPU (a seed draws the same
    numbers on every device, and a checkpoint's generator state loads on any of them). :meth:`act` takes and
    returns numpy on every device.
    """

    def __init__(self, cfg: LearnerConfig, obs_shapes: Mapping[str, Sequence[int]], action_dim: int,
                 critic_action_dim: int | None = None, critic_action_fn: CriticActionFn | None = None,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        if cfg.num_min < 1 or cfg.num_min > cfg.num_critics:
            raise ValueError(f"num_min must be in 1..num_critics ({cfg.num_critics}), got {cfg.num_min}")
        if cfg.algo not in ("sac", "td3"):
            raise ValueError(f"algo must be 'sac' or 'td3', got {cfg.algo!r}")
        self.cfg, self.device = cfg, resolve_device(device)
        self.action_dim = action_dim
        self.critic_action_fn = critic_action_fn or (lambda obs, a: a)
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        stochastic = cfg.algo == "sac"
        self.actor = Actor(obs_shapes, action_dim, cfg.hidden, stochastic, cfg.zero_init_actor).to(self.device)
        self.actor_target = Actor(obs_shapes, action_dim, cfg.hidden, stochastic).to(self.device)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.hl = HLGauss(cfg.hl_gauss).to(self.device) if cfg.hl_gauss.enabled else None
        out = cfg.hl_gauss.num_bins if self.hl else 1
        cdim = critic_action_dim or action_dim
        self.critic = CriticEnsemble(obs_shapes, cdim, cfg.hidden, cfg.num_critics, out).to(self.device)
        self.critic_target = CriticEnsemble(obs_shapes, cdim, cfg.hidden, cfg.num_critics, out).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        if cfg.matmul_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"learner.matmul_dtype must be 'float32' or 'bfloat16', got {cfg.matmul_dtype!r}")
        low = torch.bfloat16 if cfg.matmul_dtype == "bfloat16" else None
        for net in (self.actor, self.actor_target, self.critic, self.critic_target):
            net.matmul_dtype = low
        self.log_alpha = torch.tensor(float(np.log(cfg.init_alpha)), device=self.device, requires_grad=True)
        self.target_entropy = -float(action_dim) if cfg.target_entropy is None else cfg.target_entropy
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = adam([self.log_alpha], cfg.actor_lr)
        self.num_updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def q_values(self, critic: CriticEnsemble, obs: Mapping[str, torch.Tensor], action: torch.Tensor,
                 heads: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar Q of every head ``(E, B)`` (of the ``heads`` ``(K,)`` only: ``(K, B)``)."""
        out = critic(obs, action, heads)
        return self.hl.value(out) if self.hl is not None else out.squeeze(-1)

    @torch.no_grad()
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool, rng: np.random.Generator | None = None
            ) -> np.ndarray:
        """Actor actions ``(B, Da)`` in ``[-1, 1]`` for a numpy observation batch."""
        t = {k: torch.as_tensor(np.asarray(v), device=self.device) for k, v in obs.items()}
        if deterministic:
            return self.actor.mode(t).cpu().numpy()
        if self.cfg.algo == "sac":
            return self.actor.sample(t, self.gen)[0].cpu().numpy()
        a = self.actor.mode(t).cpu().numpy()
        rng = rng or np.random.default_rng()
        return np.clip(a + rng.normal(0, self.cfg.exploration_noise, a.shape), -1, 1).astype(np.float32)

    @torch.no_grad()
    def target_value(self, next_obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``V(s')`` ``(B,)``: REDQ min over a random subset of target heads (minus SAC's entropy term)."""
        if self.cfg.algo == "sac":
            a, logp = self.actor.sample(next_obs, self.gen)
        else:
            a = self.actor_target.mode(next_obs)
            noise = (torch.randn(a.shape, generator=self.gen) * self.cfg.target_noise).to(a.device)
            a = (a + noise.clamp(-self.cfg.target_noise_clip, self.cfg.target_noise_clip)).clamp(-1, 1)
        heads = torch.randperm(self.cfg.num_critics, generator=self.gen)[: self.cfg.num_min]
        subset = heads.to(self.device) if self.cfg.num_min < self.cfg.num_critics else None  # all: same min
        v = self.q_values(self.critic_target, next_obs, self.critic_action_fn(next_obs, a), subset).min(0).values
        return v - self.alpha * logp if self.cfg.algo == "sac" and self.cfg.backup_entropy else v

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: Iterable[torch.Tensor]) -> None:
        """Minimise ``loss`` over ``params`` (the parameters of ``opt``) by one clipped step.

        Back-propagation stops at ``params``: no other parameter's gradient is computed or touched (the
        actor's loss does not fill the critic's gradients)."""
        params = list(params)
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        if self.cfg.grad_clip > 0:
            clip_grad_norm_(params, self.cfg.grad_clip)
        opt.step()

    def critic_step(self, batch: Mapping[str, Any]) -> TensorStats:
        """One critic step on a torch batch; statistics (loss, mean Q, mean target) as 0-dim tensors."""
        target = batch["reward"] + batch["discount"] * self.target_value(batch["next_obs"])
        out = self.critic(batch["obs"], batch["action"])
        if self.hl is not None:
            loss = self.hl.loss(out, target)
            q = self.hl.value(out)
        else:
            q = out.squeeze(-1)
            loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q))
        self._step(self.critic_opt, loss, self.critic.parameters())
        return {"critic_loss": loss.detach(), "q_mean": q.detach().mean(), "target_mean": target.mean()}

    def update_critic(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """:meth:`critic_step` with its statistics read as floats."""
        return to_floats(self.critic_step(batch))

    def actor_step(self, obs: Mapping[str, torch.Tensor], demo_action: torch.Tensor | None = None,
                   demo_mask: torch.Tensor | None = None) -> TensorStats:
        """One actor step (and SAC temperature step) maximising the mean of the critic heads.

        With ``bc_weight`` and a ``demo_mask`` ``(B,)`` bool, the executed actions of the masked rows are
        also regressed onto ``demo_action`` ``(B, Dc)`` (the stored, normalized executed actions). The
        critic's parameters get no gradient (back-propagation stops at the actor's)."""
        if self.cfg.algo == "sac":
            a, logp = self.actor.sample(obs, self.gen)
        else:
            a, logp = self.actor.mode(obs), torch.zeros((), device=self.device)
        executed = self.critic_action_fn(obs, a)
        q = self.q_values(self.critic, obs, executed).mean(0)
        bc = self.cfg.bc_weight > 0 and demo_mask is not None and bool(demo_mask.any())
        if self.cfg.actor_l2 > 0 or bc:  # TD3+BC: Q normalised by its batch magnitude, plus the penalties
            q = q / q.abs().mean().detach().clamp_min(1e-6)
        loss = (self.alpha * logp - q).mean() if self.cfg.algo == "sac" else -q.mean()
        if self.cfg.actor_l2 > 0:
            loss = loss + self.cfg.actor_l2 * a.pow(2).mean()
        stats: TensorStats = {}
        if bc:
            bc_loss = (executed[demo_mask] - demo_action[demo_mask]).pow(2).sum(-1).mean()
            loss = loss + self.cfg.bc_weight * bc_loss
            stats["bc_loss"] = bc_loss.detach()
        self._step(self.actor_opt, loss, self.actor.parameters())
        stats.update(actor_loss=loss.detach(), action_abs=a.detach().abs().mean())
        if self.cfg.algo == "sac":
            stats["entropy"] = -logp.detach().mean()
            if self.cfg.learn_alpha:
                alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
                self._step(self.alpha_opt, alpha_loss, [self.log_alpha])
            stats["alpha"] = self.alpha
        return stats

    def update_actor(self, obs: Mapping[str, torch.Tensor], demo_action: torch.Tensor | None = None,
                     demo_mask: torch.Tensor | None = None) -> dict[str, float]:
        """:meth:`actor_step` with its statistics read as floats."""
        return to_floats(self.actor_step(obs, demo_action, demo_mask))

    @torch.no_grad()
    def fit_obs_normalization(self, obs: Mapping[str, torch.Tensor]) -> None:
        """Freeze the state standardisation of every network to the mean / std of ``obs`` (a replay sample).

        The std is floored at 1e-2 of the feature's units plus 1e-2 of its mean magnitude, so features that
        were constant in the sample (a goal height, a resting quaternion) are not blown up later.
        """
        encoders = [m for net in vars(self).values() if isinstance(net, torch.nn.Module)
                    for m in net.modules() if isinstance(m, ObsEncoder)]
        if not encoders or encoders[0].state_dim == 0:
            return
        x = encoders[0].state_features({k: v.to(self.device) for k, v in obs.items()})
        mean = x.mean(0)
        std = x.std(0).clamp_min(1e-2) + 1e-2 * mean.abs()
        for enc in encoders:
            enc.set_normalization(mean, std)

    def _polyak(self, net: torch.nn.Module, target: torch.nn.Module) -> None:
        polyak_(list(target.parameters()), list(net.parameters()), self.cfg.tau)

    def train_step(self, batch: Mapping[str, Any], actor: bool = True) -> TensorStats:
        """One gradient update on a torch batch: critic always, actor every ``actor_delay`` when ``actor``.

        Returns the statistics as 0-dim tensors: nothing is read back to the host, so a caller that logs
        every ``k`` updates pays for the read only then (:func:`to_floats`)."""
        if self.cfg.drq_pad > 0:
            batch = dict(batch, obs=augment_obs(batch["obs"], self.cfg.drq_pad, self.gen),
                         next_obs=augment_obs(batch["next_obs"], self.cfg.drq_pad, self.gen))
        stats = self.critic_step(batch)
        self.num_updates += 1
        if actor and self.num_updates % self.cfg.actor_delay == 0:
            stats.update(self.actor_step(batch["obs"], batch["action"], batch.get("offline")))
            self._polyak(self.actor, self.actor_target)
        self._polyak(self.critic, self.critic_target)
        return stats

    def update(self, batch: Mapping[str, Any], actor: bool = True) -> dict[str, float]:
        """:meth:`train_step` with its statistics read as floats (one transfer)."""
        return to_floats(self.train_step(batch, actor))

    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimizers, temperature, update count and the torch generator state."""
        return {
            "actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
            "critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
            "num_updates": self.num_updates, "gen": self.gen.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name in ("actor", "actor_target", "critic", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        for name in ("actor_opt", "critic_opt", "alpha_opt"):
            load_adam_state(getattr(self, name), state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.num_updates = int(state["num_updates"])
        self.gen.set_state(state["gen"])
