"""Golden outputs: fixed weights (from seed 0) + fixed noise -> a fixed action chunk.

The numbers below were produced by this code (torch 2.13, diffusers 0.42, DDIM eta=0, 5 steps). A
change to the network, the normalizer, the noise schedule or the sampler that alters them changes
what every saved policy does: regenerate them only on purpose, and say so in the change.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from policy_helpers import small_config, stats

from robolearn.policies import checkpoint

GOLDEN = {
    "unet": [
        [-0.019882999, 0.0184882004, 0.9450173974], [-0.0173527002, -0.0137032997, 0.8339316249],
        [-0.0147422999, -0.0176317003, -0.8371232152], [-0.0190219991, -0.0197056998, 0.3683772981],
    ],
    "mlp": [
        [-0.0193990003, 0.0016091, 0.2470840067], [-0.0151880998, 0.0036724, 0.0815790966],
        [-0.0199999996, -0.0100282002, -0.3038466871], [-0.0199999996, -0.0097345002, 0.7406769991],
    ],
}


@pytest.mark.parametrize("denoiser", ["unet", "mlp"])
def test_fixed_weights_and_noise_give_the_golden_chunk(denoiser):
    policy = checkpoint.make_policy(small_config("diffusion", denoiser)).eval()
    policy.set_stats(stats())
    obs = {"x": np.array([[0.5, -1.0, 1.5, 0.0]], np.float32), "v": np.array([[0.25, -0.5]], np.float32)}
    noise = torch.randn((1, 8, 3), generator=torch.Generator().manual_seed(7)).numpy()
    chunk = policy.act(obs, noise)
    np.testing.assert_allclose(chunk[0], np.array(GOLDEN[denoiser], np.float32), rtol=1e-4, atol=1e-6)
