"""Ray on this machine: jobs as Ray tasks, and evaluation fanned out over Ray giving each episode the outcome of
the serial evaluation with the same seed.

The evaluation blocks run first in this process (no Ray needed), then as Ray tasks on a one-machine Ray bound to
127.0.0.1 (skipped without ray), and through ``robolearn eval --ray``. Without ray, a Ray option fails with one
line naming the extra.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from robolearn.cli import eval as eval_cli
from robolearn.cli.errors import user_message
from robolearn.dist.cluster import ray_map, require_ray
from robolearn.dist.evaluate import evaluate_ray, merge, run_block, split
from robolearn.evaluate import evaluate
from robolearn.policy_factory import action_space, load_policy
from robolearn.rl.threads import set_torch_threads

ENV = "robolearn/PandaLift-v0"


def per_episode(result) -> dict[int, tuple[bool, int, float]]:
    """Reset seed -> (success, length, return) of every episode."""
    rows = zip(result.seeds, result.successes, result.lengths, result.returns, strict=True)
    return {s: (ok, n, ret) for s, ok, n, ret in rows}


def serial(spec: str, episodes: int, seed: int, num_envs: int = 2) -> dict[int, tuple[bool, int, float]]:
    return per_episode(evaluate(load_policy(spec, ENV, seed=seed), ENV, episodes, seed=seed, num_envs=num_envs,
                                progress=False))


def bc_directory(tmp_path) -> str:
    """A small BC policy directory for PandaLift (random weights, action statistics of the env's bounds)."""
    from robolearn.policies.checkpoint import make_policy, save
    from robolearn.policies.configuration import BCConfig, PolicyConfig
    from robolearn.sim.registry import gym_make

    env = gym_make(ENV)
    shapes = {k: list(env.observation_space[k].shape) for k in ("ee_pos", "object_pos", "goal_pos")}
    env.close()
    space = action_space(ENV)
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    cfg = PolicyConfig(type="bc", obs_shapes=shapes, action_dim=len(low), n_obs_steps=2, horizon=8,
                       n_action_steps=4, bc=BCConfig(hidden_dims=[32]))
    policy = make_policy(cfg)
    stats = {k: {"min": -np.ones(s[0]), "max": np.ones(s[0]), "mean": np.zeros(s[0]), "std": np.ones(s[0])}
             for k, s in shapes.items()}
    policy.set_stats(stats | {"action": {"min": low, "max": high, "mean": (low + high) / 2, "std": (high - low) / 4}})
    return str(save(policy, tmp_path / "bc"))


def test_split_covers_every_episode_once():
    blocks = split(episodes=11, seed=100, blocks=3, videos=5)
    assert [(b.first, b.count) for b in blocks] == [(0, 4), (4, 4), (8, 3)]
    assert [b.first_seed for b in blocks] == [100, 104, 108]
    assert [b.videos for b in blocks] == [4, 1, 0]
    assert len(split(episodes=2, seed=0, blocks=8)) == 2


def test_blocks_give_the_serial_outcomes_without_ray():
    reference = serial("expert", 5, seed=100)
    parts = [run_block("expert", ENV, b, eval_kwargs={"num_envs": 2}) for b in split(5, 100, 2)]
    merged = merge(ENV, parts)
    assert merged.seeds == list(range(100, 105))
    assert per_episode(merged) == reference
    assert {p.node_id for p in parts} == {"local"}


def test_a_ray_option_without_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError) as err:
        require_ray()
    assert "pip install robolearn[dist]" in user_message(err.value)
    from robolearn.cli.main import main

    code = main(["eval", "--policy", "expert", "--env", ENV, "--episodes", "1", "--ray", "auto",
                 "--out", str(tmp_path)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "pip install robolearn[dist]" in lines[0]


def test_ray_is_on_loopback(local_ray):
    assert {n["NodeManagerAddress"] for n in local_ray.nodes()} == {"127.0.0.1"}


def test_ray_map_keeps_the_order_one_torch_thread_and_the_directory(local_ray):
    assert ray_map(set_torch_threads, [0, 0, 0]) == [1, 1, 1]  # 0 keeps the count the task set
    assert ray_map(os.path.abspath, ["a", "b"]) == [os.path.abspath("a"), os.path.abspath("b")]
    assert local_ray.is_initialized()


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["expert", "zero", "bc"])
def test_ray_evaluation_equals_serial(local_ray, spec, tmp_path):
    spec = bc_directory(tmp_path) if spec == "bc" else spec
    episodes = 3 if spec == "zero" else 6
    result = evaluate_ray(spec, ENV, episodes, seed=100, tasks=3, num_envs=2, progress=False)
    assert result.seeds == list(range(100, 100 + episodes))
    assert per_episode(result) == serial(spec, episodes, seed=100)


@pytest.mark.slow
def test_eval_cli_with_ray_writes_the_serial_record(local_ray, tmp_path):
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    records = {}
    for name, extra in (("serial", []), ("ray", ["--ray", "auto"])):
        args = parser.parse_args(["--policy", "expert", "--env", ENV, "--episodes", "4", "--num-envs", "2",
                                  "--seed", "7", "--video", "1", "--out", str(tmp_path / name), *extra])
        assert eval_cli.run(args) == 0
        records[name] = json.loads((tmp_path / name / "PandaLift-v0-nominal.json").read_text())
    assert local_ray.is_initialized()  # --ray auto used the running instance and left it running
    serial_record, ray_record = records["serial"], records["ray"]
    for key in ("episodes", "successes", "success_rate", "length_mean", "return_mean"):
        assert serial_record[key] == pytest.approx(ray_record[key], rel=1e-12), key
    assert [v.rsplit("/", 1)[-1] for v in ray_record["videos"]] == ["episode_000.mp4"]
    assert (tmp_path / "ray" / "PandaLift-v0-nominal" / "episode_000.mp4").stat().st_size > 0


def test_a_named_policy_stays_named_where_a_folder_of_its_name_exists(tmp_path, monkeypatch):
    """``robolearn eval --policy expert`` once wrote ``./expert/eval``; the next Ray evaluation then took the
    folder for a checkpoint. Records of a named policy go under ``runs/eval/`` and the spec stays named."""
    from robolearn.cli.eval import default_out
    from robolearn.dist.evaluate import policy_spec

    monkeypatch.chdir(tmp_path)
    (tmp_path / "expert").mkdir()
    assert policy_spec("expert") == "expert" and policy_spec("expert:noise=0.5") == "expert:noise=0.5"
    assert default_out("expert:noise=0.5") == Path("runs/eval/expert-noise-0.5")
    assert default_out(str(tmp_path / "base")) == tmp_path / "base" / "eval"
    assert policy_spec(str(tmp_path / "expert")) == str((tmp_path / "expert").resolve())
