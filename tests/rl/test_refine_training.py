"""The real refinement loop on PandaLift: residual, RLPD, DSRL and DSRL-NA for a few hundred steps; resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robolearn.refine.config import RefineConfig
from robolearn.refine.loop import train
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint
from robolearn.rl.learner import LearnerConfig
from robolearn.wiring import refine_sources

ENV = "robolearn/PandaLift-v0"


class TinyGenerativePolicy:
    """Deterministic noise -> chunk map: move towards the cube, offset by the noise; gripper from the noise."""

    noise_shape = (2, 5)

    def act(self, obs, noise=None):
        b = len(obs["ee_pos"])
        noise = np.zeros((b, *self.noise_shape), np.float32) if noise is None else np.asarray(noise, np.float32)
        step = np.clip(obs["object_pos"] - obs["ee_pos"], -0.02, 0.02)[:, None]  # (B, 1, 3) m
        chunk = np.zeros((b, 2, 5), np.float32)
        chunk[..., :3] = np.clip(step + 0.01 * noise[..., :3], -0.02, 0.02)
        chunk[..., 3] = 0.1 * np.tanh(noise[..., 3])
        chunk[..., 4] = 1 / (1 + np.exp(-noise[..., 4]))
        return chunk

    def reset(self, env_ids=None):
        pass


def small_cfg(method: str, steps: int = 300, **kw) -> RefineConfig:
    algo = "td3" if method == "residual" else "sac"
    learner = LearnerConfig(algo=algo, hidden=[32, 32], batch_size=32, num_critics=2)
    base = {"residual": {"base": "expert:noise=1.5"}, "rlpd": {}}.get(method, {})
    defaults = dict(method=method, num_envs=4, total_env_steps=steps, random_steps=100, critic_warmup_updates=10,
                    updates_per_env_step=0.25, eval_every=steps, eval_episodes=4, eval_envs=4,
                    checkpoint_every=100, replay_capacity=5_000, learner=learner)
    return RefineConfig(**(defaults | base | kw))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["residual", "rlpd"])
def test_loop_runs_with_demos(method, tmp_path):
    cfg = small_cfg(method, demos="expert:noise=0", demo_episodes=4)
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)
    assert result.env_steps >= 300 and result.updates > 0
    assert [e["env_steps"] for e in result.evals][0] == 0 and len(result.evals) == 2
    state = load_checkpoint(latest_checkpoint(tmp_path), {})
    assert state["counters"]["env_steps"] == result.env_steps
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2
    if method == "residual":
        assert (tmp_path / "policy" / "refined.yaml").is_file()


def test_updates_from_the_first_step_fit_the_normalization_on_the_demos(tmp_path):
    """``random_steps: 0`` with demonstrations: the first update comes before any online transition has landed
    (n-step transitions land a few steps late), so the observation normalization is fitted on the demos alone
    (it sampled 0 online rows and crashed)."""
    cfg = small_cfg("residual", steps=48, random_steps=0, demos="expert:noise=0", demo_episodes=1,
                    updates_per_env_step=0.5, eval_every=0, eval_episodes=0, checkpoint_every=0)
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)
    assert result.updates > 0


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dsrl", "dsrl-na"])
def test_noise_steering_loop_with_generative_base(method, tmp_path):
    cfg = small_cfg(method, steps=240, random_steps=80)
    result = train(cfg, refine_sources(cfg, TinyGenerativePolicy), run_dir=tmp_path, progress=False)
    assert result.updates > 0 and result.env_steps >= 240
    assert all(0.0 <= e["success_rate"] <= 1.0 for e in result.evals)


def test_zero_eval_and_checkpoint_periods_mean_only_at_the_ends(tmp_path):
    """0 disables the periodic evaluations / checkpoints (as ``eval.every: 0`` in training), not every step."""
    cfg = small_cfg("residual", steps=120, random_steps=200, eval_every=0, checkpoint_every=0)
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)
    assert [e["env_steps"] for e in result.evals] == [0, 120]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_120"]
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        train(small_cfg("residual", eval_every=-1), refine_sources(cfg), run_dir=tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_dsrl_rejects_a_deterministic_base(tmp_path):
    with pytest.raises(ValueError, match="generative"):
        cfg = small_cfg("dsrl", base="expert:noise=0")
        train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)


def test_critic_warmup_burst_spends_no_env_steps(tmp_path):
    """The burst does the critic-only warm-up at once: the actor has learned by a step count at which the
    interleaved warm-up (one update per collect step here) is still under way."""
    runs = {}
    for burst in (False, True):
        cfg = small_cfg("residual", steps=140, random_steps=100, critic_warmup_updates=40,
                        critic_warmup_burst=burst, eval_every=0, checkpoint_every=0)
        runs[burst] = train(cfg, refine_sources(cfg), run_dir=tmp_path / str(burst), progress=False)
    assert runs[True].updates - runs[False].updates == 40
    last = {b: load_checkpoint(latest_checkpoint(tmp_path / str(b)), {})["learner"]["actor"] for b in runs}
    head = [k for k in last[True] if k.endswith(".weight")][-1]  # the zero-initialised output layer
    assert not last[False][head].any() and last[True][head].abs().sum() > 0


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(tmp_path):
    cfg = small_cfg("residual", steps=200)
    train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)
    ckpt = latest_checkpoint(tmp_path)
    before = load_checkpoint(ckpt, {})
    resumed = train(small_cfg("residual", steps=300), refine_sources(cfg), run_dir=tmp_path, resume=True,
                    progress=False)
    assert resumed.env_steps == 300
    assert resumed.evals[0] == before["evals"][0]
    assert resumed.updates > before["learner"]["num_updates"]
    after = load_checkpoint(latest_checkpoint(tmp_path), {})
    w0, w1 = before["learner"]["critic"], after["learner"]["critic"]
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)


SCRIPT = """
import sys
from robolearn.refine.config import RefineConfig
from robolearn.refine.loop import train
from robolearn.rl.learner import LearnerConfig
from robolearn.wiring import refine_sources
cfg = RefineConfig(method="residual", base="expert:noise=1.5", num_envs=2, total_env_steps=int(sys.argv[2]),
                   random_steps=50, critic_warmup_updates=5, updates_per_env_step=0.25, eval_every=10**6,
                   eval_episodes=2, eval_envs=2, checkpoint_every=40, replay_capacity=5000,
                   learner=LearnerConfig(algo="td3", hidden=[16], batch_size=16))
train(cfg, refine_sources(cfg), run_dir=sys.argv[1], resume=True, progress=False)
"""


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    """Kill the training process mid-run; the next run resumes from the last complete checkpoint."""
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), "100000"], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and (latest_checkpoint(run_dir) is None
                                      or int(latest_checkpoint(run_dir).name.split("_")[1]) < 80):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = int(latest_checkpoint(run_dir).name.split("_")[1])
    assert killed_at >= 80
    target = killed_at + 40
    subprocess.run([sys.executable, str(script), str(run_dir), str(target)], env=env, check=True, timeout=120)
    state = load_checkpoint(latest_checkpoint(run_dir), {})
    assert state["counters"]["env_steps"] == target


def test_zero_init_dsrl_actor_starts_at_the_zero_noise_base():
    """learner.zero_init_actor: the noise actor's deterministic output is exactly zero noise, so the steered
    policy equals ZeroNoisePolicy (the baseline DSRL's gain is measured against) before any update."""
    from robolearn.refine.noise_steering import NoiseSteeredPolicy, ZeroNoisePolicy
    from robolearn.rl.learner import OffPolicyLearner
    from robolearn.sim.vector import make_vec_env

    base = TinyGenerativePolicy()
    obs_space = make_vec_env(ENV, 2, seed=0)
    obs, _ = obs_space.reset(seed=0)
    shapes = {k: s.shape for k, s in obs_space.single_observation_space.spaces.items()}
    learner = OffPolicyLearner(LearnerConfig(algo="sac", hidden=[32], zero_init_actor=True), shapes, 10)
    learner.fit_obs_normalization({k: torch.as_tensor(v) for k, v in obs.items()})
    assert np.all(learner.act(obs, deterministic=True) == 0.0)
    steered = NoiseSteeredPolicy(base, learner.actor, bound=1.5)
    np.testing.assert_array_equal(steered.act(obs), ZeroNoisePolicy(base).act(obs))
    assert not np.allclose(base.act(obs, np.ones((2, 2, 5), np.float32)), ZeroNoisePolicy(base).act(obs))
    obs_space.close()


@pytest.mark.slow
def test_select_best_saves_the_best_evaluated_actor(tmp_path):
    from robolearn.refine.layout import ACTOR_FILE

    cfg = small_cfg("residual", steps=400, eval_every=100, select_best=True)
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)
    rates = [e["success_rate"] for e in result.evals]
    assert len(rates) == 5 and result.best is not None
    first_best = next(e for e in result.evals if e["success_rate"] == max(rates))
    assert result.best["env_steps"] == first_best["env_steps"] and result.best["success_rate"] == max(rates)
    saved = torch.load(tmp_path / "policy" / ACTOR_FILE, map_location="cpu")
    assert all(torch.equal(saved[k], v) for k, v in result.best["actor"].items())
    state = load_checkpoint(latest_checkpoint(tmp_path), {})
    assert state["best"]["env_steps"] == result.best["env_steps"]  # survives a resume


def test_chunk_transitions_cut_demonstrations_into_executed_chunks():
    """Sliding windows of Ta actions: padded with the no-op past a successful end (terminal), dropped past a
    failed one, bootstrapped from the final observation at a time-out."""
    from robolearn.refine.chunk_data import StepEpisode, chunk_transitions
    from robolearn.refine.noise_steering import NoiseSteeringVecEnv
    from robolearn.rl.replay import ReplayBuffer
    from robolearn.sim.vector import make_vec_env

    env = NoiseSteeringVecEnv(make_vec_env(ENV, 1, seed=0), TinyGenerativePolicy(), chunk_dim=10)  # Ta=2, Da=5
    obs = env.reset(seed=0)
    t_len = 4
    ep_obs = {k: np.repeat(v, t_len, 0) + np.arange(t_len).reshape(-1, *[1] * (v.ndim - 1)) for k, v in obs.items()}
    action = np.zeros((t_len, 5), np.float32)
    reward = np.array([0, 0, 0, 1], np.float32)
    buffer = ReplayBuffer(env.obs_shapes, 10, 100)
    assert chunk_transitions(env, [StepEpisode(ep_obs, action, reward, success=True)], buffer, 0.9) == 4
    np.testing.assert_allclose(buffer.discount[:4], [0.9, 0.9, 0.0, 0.0])
    np.testing.assert_allclose(buffer.reward[:4], [0, 0, 1, 1])
    np.testing.assert_allclose(buffer.next_obs["ee_pos"][0], ep_obs["ee_pos"][2])
    noop = np.clip(env.scaler.normalize(env.noop), -1, 1)
    np.testing.assert_allclose(buffer.action[3, 5:], noop)  # the last window is padded with the no-op
    failed = StepEpisode(ep_obs, action, np.zeros(t_len, np.float32), success=False)
    assert chunk_transitions(env, [failed], buffer, 0.9) == 2  # windows past a failed end are dropped
    final = {k: v[0] for k, v in obs.items()}
    timed_out = StepEpisode(ep_obs, action, np.zeros(t_len, np.float32), success=False, final_obs=final)
    assert chunk_transitions(env, [timed_out], buffer, 0.9) == 3  # the window ending at T bootstraps
    env.close()


@pytest.mark.slow
def test_dsrl_na_learns_with_demonstrations_in_the_offline_buffer(tmp_path):
    from robolearn.refine.loop import fill_offline, make_wrapper

    cfg = small_cfg("dsrl-na", steps=160, random_steps=80, demos="expert:noise=0", demo_episodes=2)
    sources = refine_sources(cfg, TinyGenerativePolicy)
    env = make_wrapper(cfg, sources, 2, 0)
    offline = fill_offline(cfg, env, sources)
    assert len(offline) >= 2 * 20 and offline.action.shape[1] == env.critic_action_dim  # executed chunks
    env.close()
    result = train(cfg, sources, run_dir=tmp_path, progress=False)
    assert result.updates > 0
    state = load_checkpoint(latest_checkpoint(tmp_path), {})
    assert state["counters"]["env_steps"] == result.env_steps


def _side(clock):
    """A learner side whose rule records the owed updates it is asked for (and runs none)."""
    from robolearn.refine.learner_side import LearnerSide
    from robolearn.rl.learner import OffPolicyLearner
    from robolearn.rl.replay import ReplayBuffer

    asked = []
    learner = OffPolicyLearner(LearnerConfig(algo="td3", hidden=[8]), {"x": (3,)}, 2, seed=0)
    side = LearnerSide(learner, {"online": ReplayBuffer({"x": (3,)}, 2, 10)}, lambda b, bufs: None,
                       lambda lrn, bufs, n, rng: asked.append(n) or {}, clock, np.random.default_rng(0))
    return side, asked


def test_update_clocks_owe_updates_per_collect_step_or_on_arrival():
    """collect: utd per wrapper transition once the warm-up is over and data is stored; arrival: the env steps
    since the last stored batch, when one arrives. Owed updates a rule skips are dropped, fractions carry."""
    from robolearn.refine.learner_side import UpdateClock

    side, asked = _side(UpdateClock(0.25, random_steps=4))
    assert not side.accrue(2, 2, arrived=True)  # warm-up
    side.buffers["online"].add({"x": np.zeros((1, 3))}, np.zeros((1, 2)), [0.0], [1.0], {"x": np.zeros((1, 3))})
    for step in (4, 6, 8):
        assert side.accrue(2, step, arrived=False)
        side.train()
    assert asked == [0, 1, 0] and side.counters["owed"] == 0.5
    side, asked = _side(UpdateClock(0.25, on_arrival=True))
    assert not side.accrue(2, 2, arrived=False) and not side.accrue(2, 4, arrived=False)
    assert side.accrue(2, 6, arrived=True)
    side.train()
    assert asked == [1] and side.counters["owed"] == 0.5 and side.counters["env_steps"] == 6


def test_refine_on_device_auto_saves_a_policy_that_loads_on_any_device(tmp_path):
    """A run on ``device: auto`` (the default: the CPU here); its refined policy loads on ``auto`` and on the CPU
    and acts the same on numpy observations."""
    from robolearn.policy_factory import load_policy
    from robolearn.rl.devices import resolve_device

    cfg = small_cfg("residual", steps=120, random_steps=60, eval_every=0, checkpoint_every=0, device="auto")
    result = train(cfg, refine_sources(cfg), run_dir=tmp_path, progress=False)
    assert result.updates > 0
    venv = refine_sources(cfg).make_env(1, 0)
    obs = {k: np.repeat(v, 2, 0) for k, v in venv.reset(seed=0)[0].items()}  # (2, ...): one state twice
    venv.close()
    actions = {}
    for device in ("auto", "cpu"):
        policy = load_policy(tmp_path / "policy", ENV, seed=0, device=device)
        assert next(policy.actor.parameters()).device == resolve_device(device)
        actions[device] = policy.act(obs)
        assert isinstance(actions[device], np.ndarray) and actions[device].shape == (2, 1, 5)
    np.testing.assert_allclose(actions["auto"], actions["cpu"], atol=1e-5)
