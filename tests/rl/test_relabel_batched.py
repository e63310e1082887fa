"""Batched demonstration relabelling: episodes side by side, one per batch row, give the per-frame path's
frames (base inputs equal up to float rounding of batched matrix products) and leave the base's generator
where the per-frame path leaves it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))
from policy_helpers import SCALE, small_config, stats  # noqa: E402

from robolearn.policies.checkpoint import make_policy  # noqa: E402
from robolearn.refine.common import ActionScaler  # noqa: E402
from robolearn.refine.methods.residual import ResidualMethod  # noqa: E402
from robolearn.refine.residual import BASE_KEY, PLAN_KEY  # noqa: E402
from robolearn.refine.warm_start import relabel_episodes, rows_are_independent  # noqa: E402


def _env(kind: str, scheduler: str = "ddim", plan_steps: int = 2) -> SimpleNamespace:
    cfg = small_config(kind, "mlp")
    cfg.diffusion.scheduler = scheduler
    base = make_policy(cfg)
    base.set_stats(stats())
    base.eval()
    space = gym.spaces.Box(-SCALE, SCALE, dtype=np.float32)
    return SimpleNamespace(base=base, scaler=ActionScaler(space), plan_steps=plan_steps)


def _episodes(lengths: list[int]) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.uniform(-2, 2, (n, 4)).astype(np.float32), "v": rng.uniform(-1, 1, (n, 2)).astype(np.float32)}
            for n in lengths]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("kind", ["diffusion", "bc"])
@pytest.mark.parametrize("batch", [3, 64])
def test_batched_relabelling_equals_the_per_frame_path(kind, batch) -> None:
    episodes = _episodes([7, 1, 12, 5, 9, 3])
    runs = {}
    for b in (1, batch):
        env = _env(kind)
        assert rows_are_independent(env.base)
        labelled = relabel_episodes(episodes, env, ResidualMethod().relabel(env), batch=b, progress=False)
        runs[b] = (labelled, env.base.generator.get_state())
    (ref, ref_gen), (out, out_gen) = runs[1], runs[batch]
    assert [len(e) for e in out] == [len(e) for e in ref] == [7, 1, 12, 5, 9, 3]
    for ref_ep, out_ep in zip(ref, out, strict=True):
        for r, o in zip(ref_ep, out_ep, strict=True):
            assert r.keys() == o.keys() == {"x", "v", BASE_KEY, PLAN_KEY}
            assert all(o[k].shape == r[k].shape for k in r)
            assert np.array_equal(r["x"], o["x"]) and np.array_equal(r["v"], o["v"])
            np.testing.assert_allclose(o[BASE_KEY], r[BASE_KEY], rtol=0, atol=1e-5)
            np.testing.assert_allclose(o[PLAN_KEY], r[PLAN_KEY], rtol=0, atol=1e-5)
    assert torch.equal(ref_gen, out_gen)  # the same noise draws, in the same order


def test_bases_whose_rows_are_not_independent_keep_the_per_frame_path() -> None:
    assert not rows_are_independent(_env("diffusion", scheduler="ddpm").base)  # fresh noise at every step
    assert not rows_are_independent(None)
    assert not rows_are_independent(SimpleNamespace(act=lambda obs, noise=None: None, reset=lambda ids=None: None))


def test_a_zero_noise_base_relabels_in_batches_like_frame_by_frame() -> None:
    """``params.base_noise: zero`` wraps the base in ZeroNoisePolicy; it keeps the tensor-level ``infer`` (from
    zero noise), so its relabelling takes the batched path (it fell back to one frame per call) with the same
    frames."""
    from robolearn.refine.noise_steering import ZeroNoisePolicy

    episodes = _episodes([7, 1, 12, 5])
    runs = {}
    for b in (1, 64):
        env = _env("diffusion")
        env.base = ZeroNoisePolicy(env.base)
        assert rows_are_independent(env.base)
        runs[b] = relabel_episodes(episodes, env, ResidualMethod().relabel(env), batch=b, progress=False)
    for ref_ep, out_ep in zip(runs[1], runs[64], strict=True):
        for r, o in zip(ref_ep, out_ep, strict=True):
            np.testing.assert_allclose(o[BASE_KEY], r[BASE_KEY], rtol=0, atol=1e-5)
    ref = _env("diffusion")
    zero = ZeroNoisePolicy(ref.base)
    obs = {k: v[:2] for k, v in episodes[0].items()}
    np.testing.assert_array_equal(zero.act(obs), ref.base.act(obs, np.zeros((2, *ref.base.noise_shape), np.float32)))
