"""Device settings: the resolver, the learner on ``auto``, and every config that runs torch accepting ``auto``.

These run on the CPU; on a machine without an accelerator ``auto`` is ``cpu``. Nothing here fakes a GPU: the
``cuda`` / ``mps`` errors are checked only where torch really lacks them.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from robolearn.core.config import ConfigError, from_dict
from robolearn.rl.devices import auto_device, check_device, module_device, mps_available, resolve_device
from robolearn.rl.learner import LearnerConfig, OffPolicyLearner
from robolearn.rl.networks import Actor
from robolearn.rl.replay import to_torch

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_auto_picks_cuda_then_mps_then_cpu():
    want = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    assert resolve_device("auto").type == want == auto_device().type
    assert resolve_device().type == want
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available() or mps_available(), reason="this machine has an accelerator")
def test_auto_is_the_cpu_without_an_accelerator():
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CUDA", "cuda:", "cuda:-1", "cpu:0", "", " cpu", 0, None])
def test_a_misspelt_device_is_one_line_naming_the_valid_values(bad):
    for fn in (check_device, resolve_device):
        with pytest.raises(ValueError) as err:
            fn(bad)
        text = str(err.value)
        assert "\n" not in text and repr(bad) in text
        assert "auto, cpu, cuda, cuda:N, mps" in text


@NO_CUDA
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_says_so_and_what_to_use(spec):
    assert check_device(spec) == spec  # spelt right: a preset naming cuda loads anywhere
    with pytest.raises(ValueError) as err:
        resolve_device(spec)
    text = str(err.value)
    assert "\n" not in text and repr(spec) in text and "CUDA is not available" in text and "device=cpu" in text


@pytest.mark.skipif(mps_available(), reason="this machine has MPS")
def test_mps_without_mps_says_so():
    with pytest.raises(ValueError, match="MPS.*not available.*device=auto or device=cpu"):
        resolve_device("mps")


def test_a_torch_device_passes_through():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert check_device(torch.device("cpu")) == "cpu"


def test_checking_the_spelling_loads_no_torch():
    """The ROS policy node checks its ``device`` parameter in a process that may never load torch."""
    code = ("import sys; from robolearn.rl.devices import check_device; check_device('cuda:1'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_module_device():
    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(torch.nn.ReLU()) == torch.device("cpu")


def test_learner_on_auto_updates_and_acts_in_numpy():
    shapes = {"x": (3,)}
    learner = OffPolicyLearner(LearnerConfig(hidden=[16], batch_size=8), shapes, 2, device="auto")
    assert learner.device == resolve_device("auto")
    assert {p.device for p in learner.critic.parameters()} == {learner.device}
    rng = np.random.default_rng(0)
    batch = {"obs": {"x": rng.normal(size=(8, 3)).astype(np.float32)}, "action": rng.uniform(-1, 1, (8, 2)),
             "reward": np.ones(8, np.float32), "discount": np.full(8, 0.99, np.float32),
             "next_obs": {"x": rng.normal(size=(8, 3)).astype(np.float32)}}
    batch["action"] = batch["action"].astype(np.float32)
    stats = learner.update(to_torch(batch, learner.device))
    assert np.isfinite(stats["critic_loss"])
    for deterministic in (True, False):
        a = learner.act({"x": np.zeros((4, 3), np.float32)}, deterministic=deterministic)
        assert isinstance(a, np.ndarray) and a.shape == (4, 2)


def test_actor_sample_draws_from_the_generator_wherever_it_lives():
    """A CPU generator's draws do not depend on the actor's device (the same seed, the same numbers)."""
    actor = Actor({"x": (3,)}, 2, [8], stochastic=True)
    obs = {"x": torch.zeros(5, 3)}
    a1, _ = actor.sample(obs, torch.Generator().manual_seed(3))
    a2, _ = actor.sample(obs, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)


def test_every_config_accepts_auto_and_names_a_bad_device(tmp_path):
    from robolearn.hil.config import HILConfig
    from robolearn.hil.reward_classifier import RewardClassifierConfig
    from robolearn.pipeline.config import PipelineConfig
    from robolearn.pipeline.validation import _check_devices
    from robolearn.refine.config import RefineConfig
    from robolearn.train import TrainConfig, check_config

    check_config(from_dict(TrainConfig, {"device": "auto"}))
    from_dict(RefineConfig, {"device": "auto"}).validate()
    from_dict(HILConfig, {"device_torch": "auto"}).validate()
    from_dict(RewardClassifierConfig, {"device": "auto", "datasets": [str(tmp_path)], "out": "x"}).validate()
    _check_devices(from_dict(PipelineConfig, {"train": {"device": "auto"}, "eval": {"device": "auto"}}))
    assert TrainConfig().device == RefineConfig().device == HILConfig().device_torch == "auto"
    assert RewardClassifierConfig().device == PipelineConfig().eval.device == "auto"

    with pytest.raises(ConfigError, match="device 'gpu' is not one of"):
        check_config(from_dict(TrainConfig, {"device": "gpu"}))
    with pytest.raises(ValueError, match="device 'gpu'"):
        from_dict(RefineConfig, {"device": "gpu"}).validate()
    with pytest.raises(ValueError, match="device 'cuda:x'"):
        from_dict(HILConfig, {"device_torch": "cuda:x"}).validate()
    with pytest.raises(ValueError, match="device 'gpu'"):
        from_dict(RewardClassifierConfig, {"device": "gpu", "datasets": [str(tmp_path)], "out": "x"}).validate()
    with pytest.raises(ConfigError, match="^eval.device: device 'gpu'"):
        _check_devices(from_dict(PipelineConfig, {"eval": {"device": "gpu"}}))


@NO_CUDA
def test_a_config_naming_cuda_fails_before_running_on_a_machine_without_it(tmp_path):
    from robolearn.refine.config import load_refine_config
    from robolearn.train import TrainConfig, check_config

    with pytest.raises(ConfigError, match="CUDA is not available"):
        check_config(from_dict(TrainConfig, {"device": "cuda"}))
    with pytest.raises(ConfigError, match="CUDA is not available"):
        load_refine_config(None, ["device=cuda:0"], tmp_path / "run")


class _Generative:
    """A deterministic generative stand-in: chunk ``(B, 2, 5)`` = the first two noise rows, scaled."""

    noise_shape = (2, 5)

    def act(self, obs, noise=None):
        b = len(obs["x"])
        noise = np.zeros((b, 2, 5), np.float32) if noise is None else np.asarray(noise, np.float32)
        return (0.01 * np.tanh(noise)).astype(np.float32)

    def reset(self, env_ids=None):
        pass


def test_refined_policies_take_numpy_and_return_numpy_on_auto():
    import gymnasium as gym

    from robolearn.refine.noise_steering import NoiseSteeredPolicy
    from robolearn.refine.residual import BASE_KEY, ResidualPolicy

    device = resolve_device("auto")
    obs = {"x": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)}
    space = gym.spaces.Box(-0.02, 0.02, (5,), np.float32)
    actor = Actor({"x": (4,), BASE_KEY: (5,)}, 5, [8], stochastic=False).to(device).eval()
    residual = ResidualPolicy(_Generative(), actor, space, 0.1)
    out = residual.act(obs)
    assert isinstance(out, np.ndarray) and out.shape == (3, 1, 5) and out.dtype == np.float32
    steered = NoiseSteeredPolicy(_Generative(), Actor({"x": (4,)}, 10, [8], stochastic=True).to(device).eval(), 1.5)
    chunk = steered.act(obs)
    assert isinstance(chunk, np.ndarray) and chunk.shape == (3, 2, 5)
