"""``act``: shapes, physical units, determinism given noise, history handling and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from policy_helpers import DA, TA, TO, TP, make_obs, small_config, stats

from robolearn.core.protocols import Policy
from robolearn.policies.checkpoint import make_policy


def fitted(kind="diffusion", denoiser="unet", image=False, **kw):
    policy = make_policy(small_config(kind, denoiser, image, **kw)).eval()
    policy.set_stats(stats())
    return policy


@pytest.mark.parametrize("kind,denoiser", [("bc", "unet"), ("diffusion", "unet"), ("diffusion", "mlp")])
def test_act_shapes_and_protocol(kind, denoiser):
    policy = fitted(kind, denoiser, image=True)
    assert isinstance(policy, Policy)
    out = policy.act(make_obs(np.random.default_rng(0), b=3, image=True))
    assert out.shape == (3, TA, DA) and out.dtype == np.float32 and np.isfinite(out).all()
    assert policy.noise_shape == (None if kind == "bc" else (TP, DA))


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver"])
def test_diffusion_is_deterministic_given_noise(scheduler):
    policy = fitted()
    policy.set_sampler(scheduler, 4)
    obs = make_obs(np.random.default_rng(1))
    noise = np.random.default_rng(2).normal(size=(2, TP, DA)).astype(np.float32)
    a = policy.act(obs, noise)
    policy.reset()
    policy.act(obs)  # draws from the policy's generator in between
    policy.reset()
    b = policy.act(obs, noise)
    np.testing.assert_array_equal(a, b)
    policy.reset()
    c = policy.act(obs, noise + 0.5)
    assert np.abs(a - c).max() > 1e-6


@pytest.mark.parametrize("kind", ["bc", "diffusion"])
def test_predict_ahead_returns_the_whole_predicted_chunk(kind):
    """After predict_ahead the chunk is all Tp predicted actions, its first Ta the ones act returns without it."""
    policy = fitted(kind)
    obs = make_obs(np.random.default_rng(1))
    noise = np.random.default_rng(2).normal(size=(2, TP, DA)).astype(np.float32)
    short = policy.act(obs, noise if kind == "diffusion" else None)
    policy.reset()
    assert policy.predict_ahead() == TA
    whole = policy.act(obs, noise if kind == "diffusion" else None)
    assert short.shape == (2, TA, DA) and whole.shape == (2, TP, DA)
    np.testing.assert_allclose(whole[:, :TA], short, atol=1e-6)
    policy.predict_ahead(False)
    policy.reset()
    assert policy.act(obs, noise if kind == "diffusion" else None).shape == (2, TA, DA)

def test_noise_is_clipped_to_configured_range():
    policy = fitted()
    policy.cfg.diffusion.noise_clip = 1.0
    obs = make_obs(np.random.default_rng(1))
    big = np.full((2, TP, DA), 7.0, np.float32)
    a = policy.act(obs, big)
    policy.reset()
    np.testing.assert_array_equal(a, policy.act(obs, np.ones_like(big)))


def test_action_is_in_physical_units():
    """A chunk of normalized +1 (the top of the data range) comes out as the stats' max."""
    policy = fitted("bc")
    with torch.no_grad():
        last = policy.head[-1]
        last.weight.zero_()
        last.bias.fill_(1.0)
    out = policy.act(make_obs(np.random.default_rng(0)))
    np.testing.assert_allclose(out, np.broadcast_to(stats()["action"]["max"], out.shape), rtol=1e-5)


def test_history_rolls_and_resets_per_row():
    policy = fitted("bc")
    rng = np.random.default_rng(0)
    o1, o2, o3 = (make_obs(rng, b=2) for _ in range(3))
    policy.observe(o1)
    policy.observe(o2)
    np.testing.assert_array_equal(policy._history["x"][:, -1].numpy(), o2["x"])
    np.testing.assert_array_equal(policy._history["x"][:, -2].numpy(), o1["x"])
    policy.reset([1])
    policy.observe(o3)
    hist = policy._history["x"].numpy()
    np.testing.assert_array_equal(hist[0], np.stack([o2["x"][0], o3["x"][0]]))
    np.testing.assert_array_equal(hist[1], np.repeat(o3["x"][1:2], TO, 0))


def test_bad_inputs_raise_clear_errors():
    policy = fitted(image=True)
    good = make_obs(np.random.default_rng(0), image=True)
    with pytest.raises(KeyError, match="'v' missing"):
        policy.act({k: v for k, v in good.items() if k != "v"})
    with pytest.raises(ValueError, match=r"'x' has shape \(2, 5\), expected \(B, 4\)"):
        policy.act(good | {"x": np.zeros((2, 5), np.float32)})
    with pytest.raises(ValueError, match="'v' contains NaN"):
        policy.act(good | {"v": np.full((2, 2), np.nan, np.float32)})
    with pytest.raises(ValueError, match="must be uint8"):
        policy.act(good | {"pixels/front": good["pixels/front"].astype(np.float32)})
    with pytest.raises(ValueError, match="batch 3, other keys have 2"):
        policy.act(good | {"x": np.zeros((3, 4), np.float32)})
    with pytest.raises(ValueError, match=r"noise has shape \(2, 3\), expected"):
        policy.act(good, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="num_inference_steps must be in"):
        policy.set_sampler("ddim", 0)
    with pytest.raises(ValueError, match="unknown diffusion scheduler 'euler'"):
        policy.set_sampler("euler")
    unfitted = make_policy(small_config("bc"))
    with pytest.raises(RuntimeError, match="normalizer has no statistics"):
        unfitted.act(make_obs(np.random.default_rng(0)))


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="horizon divisible by 4"):
        make_policy(_cfg(horizon=6, n_action_steps=4))
    with pytest.raises(ValueError, match="n_action_steps must be in"):
        make_policy(_cfg(n_action_steps=20))
    with pytest.raises(ValueError, match=r"image observation 'pixels/cam' must have shape \[H, W, 3\]"):
        make_policy(_cfg(obs_shapes={"pixels/cam": [8, 8]}))


def _cfg(**kw):
    cfg = small_config()
    cfg.diffusion.unet_channels = [16, 32, 64]
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


@pytest.mark.parametrize("denoiser", ["unet", "mlp"])
def test_traced_denoiser_matches_eager_and_follows_weight_updates(denoiser):
    import copy

    policy = fitted("diffusion", denoiser)
    obs = make_obs(np.random.default_rng(0), b=2)
    noise = np.random.default_rng(1).normal(size=(2, TP, DA)).astype(np.float32)

    def act(trace: bool) -> np.ndarray:
        policy.cfg.diffusion.trace_denoiser = trace
        policy.reset()
        return policy.act(obs, noise)

    traced = act(True)
    assert policy._traced, "eval-mode sampling should use a traced denoiser"
    np.testing.assert_allclose(traced, act(False), rtol=1e-6, atol=1e-7)
    with torch.no_grad():  # in-place updates (optimizer, EMA, load_state_dict) reach the shared weights
        for p in policy.denoiser.parameters():
            p.mul_(1.1)
    np.testing.assert_allclose(act(True), act(False), rtol=1e-6, atol=1e-7)
    twin = copy.deepcopy(policy)  # copies leave the traces behind
    assert not twin._traced
    policy.train()
    assert policy.inference_denoiser(torch.zeros(1, TP, DA), torch.zeros(1, 4)) is policy.denoiser
