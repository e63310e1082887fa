"""The stacked critic ensemble against per-critic modules, and the fused update against the per-tensor one.

Tolerances: the ensemble's outputs and gradients are compared to 1e-6 (the same float32 products, summed
by a batched matmul instead of one matmul per head). Parameters after a few updates are compared to 1e-5
absolute: fused Adam, multi-tensor clipping and the head-subset target compute the same formulas in a
different floating-point order (last-bit differences, ~1e-7 per step), and Adam's step is about ``lr``
(1e-4..3e-4) whatever the gradient's size, so 1e-5 is a few percent of one step -- far below what a
wrong formula (a missing head, a skipped clip, a different target) changes.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.networks import CriticEnsemble

OBS = {"x": (6,)}


def per_critic_modules(ens: CriticEnsemble) -> list[nn.Sequential]:
    """One ``Linear -> LayerNorm -> ReLU ... Linear`` module per head holding copies of the ensemble's weights
    (``nn.Linear`` stores ``(out, in)``, the ensemble ``(E, in, out)``; the LayerNorm affine is shared)."""
    heads = []
    for e in range(ens.num_heads):
        layers: list[nn.Module] = []
        for layer in ens.net:
            if hasattr(layer, "weight") and layer.weight.dim() == 3:
                lin = nn.Linear(*layer.weight.shape[1:])
                with torch.no_grad():
                    lin.weight.copy_(layer.weight[e].T)
                    lin.bias.copy_(layer.bias[e, 0])
                layers.append(lin)
            elif isinstance(layer, nn.LayerNorm):
                layers.append(nn.LayerNorm(layer.normalized_shape))
                layers[-1].load_state_dict(layer.state_dict())
            else:
                layers.append(nn.ReLU())
        heads.append(nn.Sequential(*layers))
    return heads


def _ensemble(heads: int = 4, out: int = 1) -> CriticEnsemble:
    torch.manual_seed(0)
    ens = CriticEnsemble(OBS, 3, [32, 32], heads, out)
    ens.encoder.set_normalization(torch.randn(6), torch.rand(6) + 0.5)
    return ens


def test_stacked_ensemble_matches_per_critic_modules_outputs_and_gradients():
    ens = _ensemble()
    ref = per_critic_modules(ens)
    obs, act = {"x": torch.randn(17, 6)}, torch.randn(17, 3)
    out = ens(obs, act)  # (E, B, 1)
    feats = torch.cat([ens.encoder(obs), act], -1)
    ref_out = torch.stack([m(feats) for m in ref])
    assert out.shape == (4, 17, 1)
    assert torch.allclose(out, ref_out, atol=1e-6)
    weights = torch.linspace(0.5, 2.0, 4)[:, None, None]  # a loss that weighs every head differently
    (weights * out.tanh()).sum().backward()
    (weights * ref_out.tanh()).sum().backward()
    for i, layer in enumerate(ens.net):
        if isinstance(layer, nn.LayerNorm):  # shared affine: the sum of the heads' gradients
            assert torch.allclose(layer.weight.grad, sum(m[i].weight.grad for m in ref), atol=1e-6)
            assert torch.allclose(layer.bias.grad, sum(m[i].bias.grad for m in ref), atol=1e-6)
        elif hasattr(layer, "weight"):
            for e, m in enumerate(ref):
                assert torch.allclose(layer.weight.grad[e], m[i].weight.grad.T, atol=1e-6)
                assert torch.allclose(layer.bias.grad[e, 0], m[i].bias.grad, atol=1e-6)


def test_head_subset_is_those_heads_of_the_full_ensemble():
    ens = _ensemble(heads=5, out=3)
    obs, act = {"x": torch.randn(9, 6)}, torch.randn(9, 3)
    heads = torch.tensor([3, 0])
    assert torch.allclose(ens(obs, act, heads), ens(obs, act)[heads], atol=1e-6)


class PerTensorLearner(OffPolicyLearner):
    """The update before the fused paths: per-tensor Adam, clipping and target updates, a full backward,
    and a target that evaluates every head and indexes the REDQ pair afterwards (the reference)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, foreach=False)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, foreach=False)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.actor_lr, foreach=False)

    def _step(self, opt, loss, params):  # type: ignore[no-untyped-def]
        params = list(params)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip, foreach=False)
        opt.step()

    @torch.no_grad()
    def _polyak(self, net, target):  # type: ignore[no-untyped-def]
        for p, tp in zip(net.parameters(), target.parameters(), strict=True):
            tp.lerp_(p, self.cfg.tau)

    @torch.no_grad()
    def target_value(self, next_obs):  # type: ignore[no-untyped-def]
        if self.cfg.algo == "sac":
            a, logp = self.actor.sample(next_obs, self.gen)
        else:
            a = self.actor_target.mode(next_obs)
            noise = torch.randn(a.shape, generator=self.gen) * self.cfg.target_noise
            a = (a + noise.clamp(-self.cfg.target_noise_clip, self.cfg.target_noise_clip)).clamp(-1, 1)
        q = self.q_values(self.critic_target, next_obs, self.critic_action_fn(next_obs, a))
        heads = torch.randperm(self.cfg.num_critics, generator=self.gen)[: self.cfg.num_min]
        v = q[heads].min(0).values
        return v - self.alpha * logp if self.cfg.algo == "sac" and self.cfg.backup_entropy else v


def _batch(seed: int, b: int = 32) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs": {"x": torch.randn(b, 6, generator=g)}, "next_obs": {"x": torch.randn(b, 6, generator=g)},
            "action": torch.rand(b, 3, generator=g) * 2 - 1, "reward": torch.rand(b, generator=g),
            "discount": torch.full((b,), 0.99)}


def _assert_same_params(a: OffPolicyLearner, b: OffPolicyLearner, atol: float = 1e-5) -> None:
    for name in ("actor", "actor_target", "critic", "critic_target"):
        for (key, pa), pb in zip(getattr(a, name).state_dict().items(), getattr(b, name).state_dict().values(),
                                 strict=True):
            assert torch.allclose(pa, pb, atol=atol, rtol=0), f"{name}.{key}: {(pa - pb).abs().max():.2e}"
    assert torch.allclose(a.log_alpha, b.log_alpha, atol=atol, rtol=0)


@pytest.mark.parametrize("cfg", [
    LearnerConfig(algo="td3", hidden=[32, 32], num_critics=2, actor_delay=2, drq_pad=0),
    LearnerConfig(algo="sac", hidden=[32, 32], num_critics=5, num_min=2, drq_pad=0, actor_l2=0.5),
    LearnerConfig(algo="sac", hidden=[32], num_critics=3, num_min=2, drq_pad=0, grad_clip=0.05),
], ids=["td3", "sac-redq", "sac-clipped"])
def test_fused_updates_match_the_per_tensor_reference(cfg: LearnerConfig):
    new, ref = (cls(cfg, OBS, 3, seed=0) for cls in (OffPolicyLearner, PerTensorLearner))
    for i in range(6):
        stats = new.update(_batch(i))
        ref_stats = ref.update(_batch(i))
        assert stats.keys() == ref_stats.keys()
        assert all(abs(stats[k] - ref_stats[k]) < 1e-4 for k in stats)
    _assert_same_params(new, ref)
    assert new.num_updates == ref.num_updates == 6


def test_a_per_tensor_adam_state_loads_and_the_optimizer_stays_fused():
    cfg = LearnerConfig(algo="sac", hidden=[32], num_critics=3, num_min=2, drq_pad=0)
    ref = PerTensorLearner(cfg, OBS, 3, seed=1)
    for i in range(3):
        ref.update(_batch(i))
    saved = io.BytesIO()
    torch.save(ref.state_dict(), saved)  # a checkpoint round trip (in memory the states would alias)
    saved.seek(0)
    new = OffPolicyLearner(cfg, OBS, 3, seed=7)
    new.load_state_dict(torch.load(saved, weights_only=False))
    assert all(g["fused"] for opt in (new.actor_opt, new.critic_opt, new.alpha_opt) for g in opt.param_groups)
    _assert_same_params(new, ref, atol=0.0)
    for i in range(3, 6):
        new.update(_batch(i))
        ref.update(_batch(i))
    _assert_same_params(new, ref)


def test_checkpoint_layout_of_the_critic_is_unchanged():
    """Parameter names and shapes that saved critics hold: stacked ``(E, in, out)`` weights, shared LayerNorm."""
    shapes = {k: tuple(v.shape) for k, v in _ensemble(heads=4).state_dict().items()}
    assert shapes == {"encoder.shift": (6,), "encoder.scale": (6,),
                      "net.0.weight": (4, 9, 32), "net.0.bias": (4, 1, 32), "net.1.weight": (32,), "net.1.bias": (32,),
                      "net.3.weight": (4, 32, 32), "net.3.bias": (4, 1, 32), "net.4.weight": (32,), "net.4.bias": (32,),
                      "net.6.weight": (4, 32, 1), "net.6.bias": (4, 1, 1)}


def test_train_step_keeps_statistics_as_tensors():
    learner = OffPolicyLearner(LearnerConfig(algo="sac", hidden=[16], drq_pad=0), OBS, 3, seed=0)
    stats = learner.train_step(_batch(0))
    assert {"critic_loss", "q_mean", "target_mean", "actor_loss", "entropy", "alpha"} <= stats.keys()
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in stats.values())
    assert all(isinstance(v, float) for v in learner.update(_batch(1)).values())


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_bfloat16_matmuls_keep_float32_weights_outputs_and_track_float32(algo):
    """``matmul_dtype: bfloat16``: weights, Q-values and actions stay float32, and the first updates move the
    weights the way the float32 learner's do: cosine of the two weight changes > 0.98 (measured 0.999; the
    same learner on other batches: 0.82), which a wrong gradient or a missing head would not reach."""
    learners = [OffPolicyLearner(LearnerConfig(algo=algo, hidden=[32, 32], drq_pad=0, matmul_dtype=dt), OBS, 3,
                                 seed=0) for dt in ("float32", "bfloat16")]
    batch = _batch(0)
    q32, q16 = (ln.critic(batch["obs"], batch["action"]) for ln in learners)
    assert q16.dtype == torch.float32 and learners[1].actor.mode(batch["obs"]).dtype == torch.float32
    assert (q16 - q32).abs().max() < 0.05 * q32.abs().max()  # bfloat16 inputs: ~3 significant digits
    start = [torch.cat([p.detach().flatten() for p in ln.critic.parameters()]) for ln in learners]
    for i in range(5):
        for ln in learners:
            ln.update(_batch(10 + i))
    assert all(p.dtype == torch.float32 for p in learners[1].critic.parameters())
    moved = [torch.cat([p.detach().flatten() for p in ln.critic.parameters()]) - s0
             for ln, s0 in zip(learners, start, strict=True)]
    assert torch.nn.functional.cosine_similarity(moved[0], moved[1], dim=0) > 0.98


def test_unknown_matmul_dtype_is_refused():
    with pytest.raises(ValueError, match="matmul_dtype must be"):
        OffPolicyLearner(LearnerConfig(matmul_dtype="float16"), OBS, 3)
