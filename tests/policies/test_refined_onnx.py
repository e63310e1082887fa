"""ONNX export of refined residual policies: the base graph then the residual graph, run by onnxruntime as a
robot-side runtime would from ``refined.json`` alone, match ``ResidualPolicy.act`` to 1e-4 for fixed noise."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from policy_helpers import small_config

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from robolearn.policies import checkpoint  # noqa: E402
from robolearn.policies.onnx_export import load_onnx  # noqa: E402
from robolearn.policy_factory import ZeroPolicy, action_space, load_refined  # noqa: E402
from robolearn.refine.residual import BASE_KEY, PLAN_KEY, ResidualPolicy, normalized_chunk, plan_dim  # noqa: E402
from robolearn.refine.saved import save_refined  # noqa: E402
from robolearn.refined_export import export_refined_onnx, export_residual_onnx  # noqa: E402
from robolearn.rl.networks import Actor  # noqa: E402
from robolearn.sim.registry import gym_make  # noqa: E402

ATOL = 1e-4
ENV = "robolearn/PandaLift-v0"
BASE_KEYS = {"ee_pos": [3], "object_to_ee": [3]}
"""The base sees two of the env's keys; the actor sees all of them."""


def env_shapes() -> dict[str, tuple[int, ...]]:
    env = gym_make(ENV)
    try:
        return {k: tuple(s.shape) for k, s in env.observation_space.spaces.items()}
    finally:
        env.close()


def actor_shapes(plan_steps: int, da: int = 5) -> dict[str, tuple[int, ...]]:
    """The residual actor's observation: the env's keys, ``base_action`` and, with ``plan_steps``, ``base_plan``."""
    shapes = env_shapes() | {BASE_KEY: (da,)}
    return shapes | ({PLAN_KEY: (plan_dim(plan_steps, da),)} if plan_steps else {})


def perturbed_actor(shapes: dict[str, tuple[int, ...]], seed: int) -> Actor:
    """A TD3 actor far from zero (corrections reach the bounds), with a standardisation whose clip bites."""
    torch.manual_seed(seed)
    actor = Actor(shapes, 5, [32], stochastic=False, zero_init_last=True).eval()
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(0.5 * torch.randn_like(p))
        n = actor.encoder.state_dim
        actor.encoder.set_normalization(0.1 * torch.randn(n), 0.05 + torch.rand(n))
    return actor


def observations(rng: np.random.Generator, b: int, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Env observations ``{key: (B, *shape)}`` float32, a few times the standardisation's range."""
    return {
        k: rng.normal(scale=0.5, size=(b, *s)).astype(np.float32)
        for k, s in shapes.items()
        if k not in (BASE_KEY, PLAN_KEY)
    }


def test_residual_graph_matches_act_over_a_named_base(tmp_path):
    """The residual step alone (any base: here the zero policy): ``clip(base + scale * half * tanh(actor))``
    with the actor's standardisation inside the graph; per-dimension scales, any batch size."""
    space = action_space(ENV)
    shapes = actor_shapes(0)
    scale = [0.2, 0.2, 0.2, 0.5, 1.0]
    policy = ResidualPolicy(ZeroPolicy(space), perturbed_actor(shapes, 0), space, scale)
    session = load_onnx(export_residual_onnx(policy, shapes, tmp_path / "residual.onnx"))
    assert [i.name for i in session.get_inputs()] == [*shapes, "base_action_physical"]
    assert session.get_inputs()[0].shape[0] == "batch"
    clipped = 0
    for b in (1, 3, 7):
        obs = observations(np.random.default_rng(b), b, shapes)
        policy.reset()
        expected = policy.act(obs)[:, 0]
        chunk = ZeroPolicy(space).act(obs)
        feed = obs | {BASE_KEY: normalized_chunk(chunk, policy.scaler)[:, 0], "base_action_physical": chunk[:, 0]}
        (action,) = session.run(["action"], feed)
        assert action.shape == (b, 5)
        np.testing.assert_allclose(action, expected, atol=ATOL, rtol=0)
        clipped += int(np.sum((action == space.low) | (action == space.high)))
        assert np.abs(action - np.clip(chunk[:, 0], space.low, space.high)).max() > 1e-3  # a real correction
    assert clipped > 0  # some corrections reach the bounds: the graph's clip is exercised


class Runtime:
    """What a robot-side runtime does with the exported directory, from ``refined.json`` alone: numpy for
    the observation history, the base chunk's normalization and the plan; onnxruntime for the graphs."""

    def __init__(self, out: Path) -> None:
        self.manifest = m = json.loads((out / "refined.json").read_text())
        self.base = load_onnx(out / m["base"]["files"]["graph"])
        self.residual = load_onnx(out / m["residual"]["file"])
        self.low, self.high, self.center, self.half = (
            np.asarray(m["action"][k], np.float32) for k in ("low", "high", "center", "half")
        )
        self.history: dict[str, np.ndarray] | None = None
        self.chunk: np.ndarray | None = None
        self.i = 0

    def normalize(self, a: np.ndarray) -> np.ndarray:
        return np.clip((np.clip(a, self.low, self.high) - self.center) / self.half, -1, 1)

    def observe(self, obs: dict[str, np.ndarray]) -> None:
        base = self.manifest["base"]
        if self.history is None:
            self.history = {k: np.repeat(obs[k][:, None], base["n_obs_steps"], 1) for k in base["keys"]}
        else:
            self.history = {k: np.concatenate([h[:, 1:], obs[k][:, None]], 1) for k, h in self.history.items()}

    def plan(self, chunk_norm: np.ndarray) -> np.ndarray:
        k = self.manifest["residual"]["plan_steps"]
        b, ta, da = chunk_norm.shape
        plan = np.zeros((b, k, da + 1), np.float32)
        for r in range(k):
            if self.i + 1 + r < ta:
                plan[:, r, :da], plan[:, r, da] = chunk_norm[:, self.i + 1 + r], 1.0
        return plan.reshape(b, -1)

    def step(self, obs: dict[str, np.ndarray], noise: np.ndarray | None = None) -> np.ndarray:
        self.observe(obs)
        if self.chunk is None or self.i == self.chunk.shape[1]:
            assert self.history is not None
            shape = self.manifest["base"]["noise"]["shape"][1:]
            if noise is None:
                assert self.manifest["base_noise"] == "zero"
                noise = np.zeros((len(next(iter(obs.values()))), *shape), np.float32)
            (self.chunk,) = self.base.run(["action"], self.history | {"noise": noise})
            self.i = 0
        chunk_norm = self.normalize(self.chunk)
        feed = {k["name"]: obs[k["name"]] for k in self.manifest["residual"]["inputs"] if k["name"] in obs}
        feed |= {BASE_KEY: chunk_norm[:, self.i], "base_action_physical": self.chunk[:, self.i]}
        if self.manifest["residual"]["plan_steps"]:
            feed[PLAN_KEY] = self.plan(chunk_norm)
        (action,) = self.residual.run(["action"], feed)
        self.i += 1
        return action


def save_residual(tmp_path: Path, plan_steps: int, base_noise: str) -> Path:
    """A refined residual directory over a small diffusion checkpoint (MLP denoiser, DDIM, Ta = 4) whose chunks
    can leave the action bounds (its action statistics span 1.5x them)."""
    space = action_space(ENV)
    cfg = dataclasses.replace(small_config("diffusion", "mlp"), obs_shapes=dict(BASE_KEYS), action_dim=5)
    base = checkpoint.make_policy(cfg).eval()
    span = space.high - space.low
    wide = {"min": space.low - span / 4, "max": space.high + span / 4, "mean": np.zeros(5), "std": np.ones(5)}
    state = {
        k: {"min": -np.ones(s), "max": np.ones(s), "mean": np.zeros(s), "std": np.ones(s)} for k, s in BASE_KEYS.items()
    }
    base.set_stats(state | {"action": wide})
    torch.manual_seed(2)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.05 * torch.randn_like(p))
    base_dir = checkpoint.save(base, tmp_path / "base")
    shapes = actor_shapes(plan_steps)
    params = {"scale": [0.2, 0.2, 0.2, 0.5, 1.0], "plan_steps": plan_steps, "base_noise": base_noise}
    return save_refined(
        tmp_path / "refined", "residual", str(base_dir), ENV, perturbed_actor(shapes, 1), shapes, [32], params
    )


@pytest.mark.slow  # the dynamo exporter takes seconds per graph
def test_refined_export_runs_base_then_residual_like_act(tmp_path, capsys):
    """``robolearn export`` of a refined residual directory (zero-noise diffusion base, plan_steps=2): the
    runtime steps base.onnx and residual.onnx over a chunk and a replan and executes what ``act`` does; the
    same graphs with random noise fed match a ``base_noise: random`` policy given that noise; ``graph="denoiser"``
    writes the split base export beside the residual graph."""
    from robolearn.cli.main import main

    refined = save_residual(tmp_path, plan_steps=2, base_noise="zero")
    out = tmp_path / "onnx"
    assert main(["export", "--policy", str(refined), "--out", str(out)]) == 0
    assert "residual.onnx" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"base.onnx", "base.json", "residual.onnx", "refined.json"}
    runtime = Runtime(out)
    m = runtime.manifest
    assert m["base_noise"] == "zero" and m["base"]["noise"]["mode"] == "zero" and m["residual"]["plan_steps"] == 2
    assert m["residual"]["scale"] == [0.2, 0.2, 0.2, 0.5, 1.0]  # float32 written as the shortest decimals
    assert [i.name for i in runtime.residual.get_inputs()] == [i["name"] for i in m["residual"]["inputs"]]
    assert json.loads(runtime.residual.get_modelmeta().custom_metadata_map["robolearn"]) == m
    policy = load_refined(refined)
    shapes = actor_shapes(2)
    rng = np.random.default_rng(0)
    space, outside = action_space(ENV), 0
    for _ in range(6):  # Ta = 4: a whole chunk, then a replan
        obs = observations(rng, 3, shapes)
        np.testing.assert_allclose(runtime.step(obs), policy.act(obs)[:, 0], atol=ATOL, rtol=0)
        outside += int(np.sum((runtime.chunk < space.low) | (runtime.chunk > space.high)))
    assert outside > 0  # base actions beyond the bounds: the graph's clip of the base action is exercised

    random_base = ResidualPolicy(policy.base.base, policy.actor, action_space(ENV), policy.scale, 2)
    runtime = Runtime(out)
    for b in (1, 2):
        obs, noise = observations(rng, b, shapes), rng.normal(size=(b, 8, 5)).astype(np.float32)
        random_base.reset()
        runtime.history = runtime.chunk = None
        np.testing.assert_allclose(runtime.step(obs, noise), random_base.act(obs, noise)[:, 0], atol=ATOL, rtol=0)

    split = export_refined_onnx(refined, tmp_path / "split", graph="denoiser", steps=3)  # the caller's loop
    assert {p.name for p in split} == {
        "encoder.onnx",
        "denoiser.onnx",
        "denoiser.json",
        "residual.onnx",
        "refined.json",
    }
    base = json.loads((tmp_path / "split" / "refined.json").read_text())["base"]
    assert base["graph"] == "denoiser" and base["files"]["denoiser"] == "denoiser.onnx"
    assert json.loads((tmp_path / "split" / "denoiser.json").read_text())["num_inference_steps"] == 3


def test_export_refuses_other_methods_and_named_bases(tmp_path, capsys):
    """DSRL (or any non-residual method) is a one-line CLI error naming what exports; a residual over a named
    policy (no checkpoint) is refused before anything is written; torchscript is refused for refined policies."""
    from robolearn.cli.main import main

    shapes = actor_shapes(0)
    actor = perturbed_actor(shapes, 0)
    dsrl = save_refined(tmp_path / "dsrl", "dsrl", "zero", ENV, actor, shapes, [32], {})
    assert main(["export", "--policy", str(dsrl), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "refined method 'dsrl' has no ONNX export" in err and "residual" in err
    named = save_refined(tmp_path / "named", "residual", "zero", ENV, actor, shapes, [32], {"scale": 0.1})
    with pytest.raises(ValueError, match="not a trained checkpoint"):
        export_refined_onnx(named, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["export", "--policy", str(named), "--format", "torchscript", "--out", str(tmp_path / "o")]) == 2
    assert "onnx only" in capsys.readouterr().err
