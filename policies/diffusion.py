"""Diffusion policy: a denoiser conditioned on the observation history generates an action chunk.

Training uses the DDPM objective: corrupt a normalized chunk ``a0 (B, Tp, Da)`` with noise at a random
step ``t`` and regress the noise (or ``a0``). Sampling starts from noise ``(B, Tp, Da)``, clipped to
``[-noise_clip, noise_clip]``, and runs one of diffusers' schedulers (DDPM, DDIM, DPM-Solver++) for a
number of steps chosen at load time (:meth:`DiffusionPolicy.set_sampler`). With DDIM (eta = 0) and
DPM-Solver++ the chunk is a deterministic function of the observation and the initial noise, which
latent-noise steering relies on; DDPM adds fresh noise from the policy's own generator.

For speed at batch 1 on a CPU, DDIM's update is computed here from the scheduler's coefficients (the
same arithmetic as ``DDIMScheduler.step``), and in eval mode the denoiser runs as a TorchScript trace
that shares its weights (``DiffusionConfig.trace_denoiser``); both leave the numbers unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from robolearn.policies.base import ChunkPolicy
from robolearn.policies.configuration import DiffusionConfig, PolicyConfig
from robolearn.policies.unet1d import ConditionalUnet1D, MLPDenoiser

SCHEDULERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpmsolver": DPMSolverMultistepScheduler}
"""Sampler name -> diffusers scheduler class."""


def make_scheduler(cfg: DiffusionConfig, name: str):
    """A diffusers scheduler ``name`` (``ddpm``, ``ddim``, ``dpmsolver``) on the training noise schedule."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown diffusion scheduler '{name}'; choose from {sorted(SCHEDULERS)}")
    common = dict(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        prediction_type=cfg.prediction_type,
    )
    if name == "dpmsolver":
        # DPM-Solver++ thresholds x0 instead of clipping; a ratio of 1.0 with max 1.0 is a clip to [-1, 1].
        return DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2, thresholding=cfg.clip_sample,
            dynamic_thresholding_ratio=1.0, sample_max_value=1.0, lower_order_final=True,
        )
    return SCHEDULERS[name](**common, clip_sample=cfg.clip_sample)


class DiffusionPolicy(ChunkPolicy):
    """Action-chunk diffusion policy (see module docstring); ``noise_shape == (Tp, Da)``."""

    def __init__(self, cfg: PolicyConfig) -> None:
        if cfg.type != "diffusion":
            raise ValueError(f"DiffusionPolicy needs policy.type 'diffusion', got '{cfg.type}'")
        d = cfg.diffusion
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            super().__init__(cfg)
            cond = self.encoder.out_dim
            if d.denoiser == "unet":
                self.denoiser = ConditionalUnet1D(
                    cfg.action_dim, cfg.horizon, cond, d.unet_channels, d.kernel_size, d.n_groups,
                    d.step_embed_dim,
                )
            else:
                self.denoiser = MLPDenoiser(
                    cfg.action_dim, cfg.horizon, cond, d.mlp_hidden_dim, d.mlp_blocks, d.step_embed_dim
                )
        self.train_scheduler = make_scheduler(d, "ddpm")
        self.set_sampler(d.scheduler, d.num_inference_steps)
        self._traced: dict[tuple, object] = {}

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """``(Tp, Da)``: one sample's initial noise."""
        return (self.cfg.horizon, self.cfg.action_dim)

    def set_sampler(self, scheduler: str | None = None, num_inference_steps: int | None = None) -> None:
        """Choose the sampler and number of denoising steps (also recorded in ``cfg.diffusion``)."""
        d = self.cfg.diffusion
        name = d.scheduler if scheduler is None else scheduler
        steps = int(d.num_inference_steps if num_inference_steps is None else num_inference_steps)
        if not 1 <= steps <= d.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {d.num_train_timesteps}], got {steps}")
        self.scheduler = make_scheduler(d, name)
        d.scheduler, d.num_inference_steps = name, steps  # type: ignore[assignment]

    def sample_noise(self, batch: int) -> torch.Tensor:
        """Standard normal noise ``(B, Tp, Da)`` from the policy's own generator."""
        return torch.randn((batch, *self.noise_shape), generator=self.generator).to(self.device)

    def predict_normalized(self, obs: Mapping[str, torch.Tensor], noise: torch.Tensor | None) -> torch.Tensor:
        """Denoise ``noise`` (drawn when None) into a normalized chunk ``(B, Tp, Da)``."""
        cond = self.encoder(obs)
        b = cond.shape[0]
        x = self.sample_noise(b) if noise is None else noise.to(self.device, torch.float32)
        clip = self.cfg.diffusion.noise_clip
        if clip is not None:
            x = x.clamp(-clip, clip)
        sched = self.scheduler
        with warnings.catch_warnings():  # diffusers' DPM-Solver calls np.array(tensor, copy=False)
            warnings.simplefilter("ignore", DeprecationWarning)
            sched.set_timesteps(self.cfg.diffusion.num_inference_steps, device=x.device)
        denoise = self.inference_denoiser(x, cond)
        if isinstance(sched, DDIMScheduler):
            return self._ddim(x, cond, denoise)
        extra = {"generator": self.generator} if isinstance(sched, DDPMScheduler) else {}
        for t in sched.timesteps:
            pred = denoise(x, t.expand(b), cond)
            x = sched.step(pred, t, x, **extra).prev_sample
        return x

    def _ddim(self, x: torch.Tensor, cond: torch.Tensor, denoise) -> torch.Tensor:
        """DDIM with eta = 0, as ``DDIMScheduler.step`` computes it, on precomputed per-step coefficients
        (the scheduler's per-call overhead is a sizeable share of a small denoiser's latency)."""
        d, sched = self.cfg.diffusion, self.scheduler
        ratio = d.num_train_timesteps // sched.num_inference_steps
        b = x.shape[0]
        for t in sched.timesteps:
            a = sched.alphas_cumprod[t]
            prev = int(t) - ratio
            a_prev = sched.alphas_cumprod[prev] if prev >= 0 else sched.final_alpha_cumprod
            sqrt_a, sqrt_1ma = float(a**0.5), float((1 - a) ** 0.5)
            pred = denoise(x, t.expand(b), cond)
            if d.prediction_type == "epsilon":
                x0, eps = (x - sqrt_1ma * pred) / sqrt_a, pred
            else:
                x0, eps = pred, (x - sqrt_a * pred) / sqrt_1ma
            if d.clip_sample:
                x0 = x0.clamp(-1.0, 1.0)
            x = float(a_prev**0.5) * x0 + float((1 - a_prev) ** 0.5) * eps
        return x

    def __getstate__(self) -> dict:
        """Copies and pickles leave the traced denoisers behind (they are re-traced on use)."""
        return {**super().__getstate__(), "_traced": {}}

    def inference_denoiser(self, x: torch.Tensor, cond: torch.Tensor):
        """The denoiser for sampling: in eval mode (and ``trace_denoiser``) a TorchScript trace for this
        batch shape and device, which shares the module's parameters, so later weight updates apply to it;
        re-traced when a parameter is replaced. In training mode the module itself."""
        if self.training or not self.cfg.diffusion.trace_denoiser or torch.jit.is_tracing():
            return self.denoiser
        params = tuple(p.data_ptr() for p in self.denoiser.parameters())
        key = (tuple(x.shape), tuple(cond.shape), x.device, x.dtype, params)
        traced = self._traced.get(key)
        if traced is None:
            t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still fastest here
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(self.denoiser, (x, t, cond), check_trace=False)
            if len(self._traced) >= 4:  # a few batch shapes at a time (e.g. eval batch and batch 1)
                self._traced.pop(next(iter(self._traced)))
            self._traced[key] = traced
        return traced

    def loss_normalized(
        self, obs: Mapping[str, torch.Tensor], action: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """DDPM loss: MSE between the denoiser's output and the noise (or clean chunk), valid steps only."""
        cond = self.encoder(obs, augment=self.training)
        b = action.shape[0]
        noise = torch.randn_like(action)
        t = torch.randint(0, self.cfg.diffusion.num_train_timesteps, (b,), device=action.device)
        noisy = self.train_scheduler.add_noise(action, noise, t)
        pred = self.denoiser(noisy, t, cond)
        target = noise if self.cfg.diffusion.prediction_type == "epsilon" else action
        weight = mask.float().unsqueeze(-1)
        loss = ((pred - target) ** 2 * weight).sum() / (weight.sum().clamp_min(1.0) * action.shape[-1])
        return loss, {"loss": loss.item()}
