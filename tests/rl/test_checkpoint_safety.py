"""Nothing received runs code, and a damaged newest checkpoint is skipped by name (issue 25, items 4 and 7).

Each kind of file robolearn loads gets a pickle whose ``__reduce__`` would write a marker file; loading it
must fail (or ignore it) without the marker appearing.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from robolearn.core.checkpoints import CheckpointError
from robolearn.rl.checkpoint import (
    LEGACY,
    convert_legacy,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from robolearn.rl.replay import ReplayBuffer


class Payload:
    """Unpickling this calls ``os.system``, which writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path) -> None:
    """Write a pickle payload at ``path`` the way ``torch.save`` would (a zip with data.pkl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"x": Payload(marker)}, path)


def small_state() -> dict:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    return {"learner": {"actor": net.state_dict(), "actor_opt": opt.state_dict(), "num_updates": 1,
                        "log_alpha": torch.tensor(0.5), "gen": torch.Generator().get_state()},
            "counters": {"env_steps": 10, "updates": 1}, "rng": rng_state(np.random.default_rng(3)),
            "torch_rng": torch.get_rng_state(), "evals": [{"success_rate": 0.5, "step": 10.0}],
            "update_s": 1.25, "mode": "hil", "betas": (0.9, 0.999), "nan": float("nan")}


def buffer(n: int = 5) -> ReplayBuffer:
    buf = ReplayBuffer({"x": [3]}, 2, 16)
    obs = {"x": np.arange(3 * n, dtype=np.float32).reshape(n, 3)}
    buf.add(obs, np.ones((n, 2), np.float32), np.ones(n, np.float32), np.ones(n, np.float32), obs)
    return buf


def test_state_round_trips_without_pickle(tmp_path):
    state = small_state()
    save_checkpoint(tmp_path, 10, state, {"online": buffer()})
    ckpt = latest_checkpoint(tmp_path)
    assert sorted(p.name for p in ckpt.iterdir()) == ["MANIFEST.json", "replay_online.npz", "state.json",
                                                       "state.safetensors"]
    restored = ReplayBuffer({"x": [3]}, 2, 16)
    loaded = load_checkpoint(ckpt, {"online": restored})
    assert restored.size == 5
    net = torch.nn.Linear(3, 2)
    net.load_state_dict(loaded["learner"]["actor"])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    opt.load_state_dict(loaded["learner"]["actor_opt"])
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], state["learner"]["actor_opt"]["state"][0]["exp_avg"])
    assert loaded["betas"] == (0.9, 0.999) and np.isnan(loaded["nan"]) and loaded["mode"] == "hil"
    assert torch.equal(loaded["torch_rng"], state["torch_rng"])
    rng = np.random.default_rng(0)
    set_rng_state(rng, loaded["rng"])
    assert rng.random() == np.random.default_rng(3).random()


def test_pickled_refine_state_is_refused_not_run(tmp_path):
    marker = tmp_path / "ran"
    step = tmp_path / "run" / "checkpoints" / "step_5"
    plant(step / LEGACY, marker)
    (step.parent / "LATEST").write_text("step_5")
    assert latest_checkpoint(tmp_path / "run") == step  # found, so resume cannot silently start over
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(step, {})
    message = str(err.value)
    assert "\n" not in message and str(step / LEGACY) in message and "convert" in message
    assert not marker.exists()


def test_pickle_in_new_format_files_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    save_checkpoint(tmp_path, 1, small_state(), {"online": buffer()})
    ckpt = latest_checkpoint(tmp_path)
    for name in ("state.safetensors", "state.json"):
        plant(ckpt / name, marker)
    with pytest.raises(CheckpointError):  # the manifest no longer matches
        load_checkpoint(ckpt, {})
    (ckpt / "MANIFEST.json").unlink()
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt, {})
    assert not marker.exists()


def test_pickled_replay_array_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    save_checkpoint(tmp_path, 1, small_state(), {"online": buffer()})
    ckpt = latest_checkpoint(tmp_path)
    state = buffer().state_dict() | {"action": np.array([Payload(marker)], dtype=object)}
    with open(ckpt / "replay_online.npz", "wb") as f:
        np.savez(f, **state)
    from robolearn.core.checkpoints import write_manifest

    write_manifest(ckpt, ["state.json", "state.safetensors", "replay_online.npz"])  # as a forger would
    with pytest.raises(CheckpointError, match="replay_online.npz"):
        load_checkpoint(ckpt, {"online": ReplayBuffer({"x": [3]}, 2, 16)})
    assert not marker.exists()


def test_refined_actor_and_reward_classifier_weights_do_not_run(tmp_path):
    from robolearn.hil.reward_classifier import CONFIG_FILE, FORMAT, WEIGHTS_FILE, SuccessClassifier
    from robolearn.refine.saved import RefinedMeta, load_actor

    marker = tmp_path / "ran"
    plant(tmp_path / "refined" / "actor.pt", marker)
    meta = RefinedMeta(method="residual", base="zero", env_id="x", obs_shapes={"x": [3]}, action_dim=2,
                       stochastic=False, hidden=[8])
    with pytest.raises(pickle.UnpicklingError):
        load_actor(tmp_path / "refined", meta)
    classifier = tmp_path / "classifier"
    plant(classifier / WEIGHTS_FILE, marker)
    (classifier / CONFIG_FILE).write_text(yaml.safe_dump(
        {"format": FORMAT, "obs_shapes": {"x": [3]}, "hidden": [8], "pixel_features": 8, "keys": ["x"],
         "threshold": 0.5}))
    with pytest.raises(pickle.UnpicklingError):
        SuccessClassifier.load(classifier)
    assert not marker.exists()


def test_base_policy_checkpoint_and_train_state_do_not_run(tmp_path):
    from robolearn.policies import checkpoint
    from robolearn.policies.configuration import PolicyConfig
    from robolearn.train import restore

    marker = tmp_path / "ran"
    cfg = PolicyConfig(type="bc", obs_shapes={"x": [3]}, action_dim=2, n_obs_steps=1, horizon=2, n_action_steps=1)
    policy = checkpoint.make_policy(cfg)
    ckpt = tmp_path / "ckpt"
    checkpoint.save(policy, ckpt)
    plant(ckpt / "train_state.pt", marker)
    with pytest.raises(CheckpointError, match="train_state.pt") as err:
        restore(ckpt, policy, None, None, None)
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)
    weights = next(ckpt.glob("*.safetensors"))
    plant(weights, marker)
    with pytest.raises(Exception):  # noqa: B017 - safetensors' own error type; the point is that nothing ran
        checkpoint.load(ckpt)
    assert not marker.exists()


def test_damaged_latest_checkpoint_falls_back_and_is_named(tmp_path, caplog):
    save_checkpoint(tmp_path, 10, small_state(), {"online": buffer(3)})
    save_checkpoint(tmp_path, 20, small_state(), {"online": buffer(5)})
    latest = tmp_path / "checkpoints" / "step_20"
    for name in ("state.safetensors", "replay_online.npz"):
        data = (latest / name).read_bytes()
        (latest / name).write_bytes(data[: len(data) // 2])
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_10"
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and str(latest / name) in lines[0] and "\n" not in lines[0]
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(latest, {"online": ReplayBuffer({"x": [3]}, 2, 16)})
        (latest / name).write_bytes(data)
    assert latest_checkpoint(tmp_path) == latest


def test_truncated_replay_without_manifest_names_the_file(tmp_path):
    save_checkpoint(tmp_path, 10, small_state(), {"online": buffer()})
    ckpt = latest_checkpoint(tmp_path)
    (ckpt / "MANIFEST.json").unlink()
    assert latest_checkpoint(tmp_path) is None  # no intact checkpoint: a fresh start, not a crash
    with pytest.raises(CheckpointError, match="MANIFEST.json"):
        load_checkpoint(ckpt, {})


def test_convert_legacy_runs_only_when_asked(tmp_path):
    step = tmp_path / "checkpoints" / "step_3"
    step.mkdir(parents=True)
    state = small_state()
    torch.save(state, step / LEGACY)
    with open(step / "replay_online.npz", "wb") as f:
        np.savez(f, **buffer().state_dict())
    assert convert_legacy(tmp_path) == [step]
    loaded = load_checkpoint(latest_checkpoint(tmp_path), {"online": ReplayBuffer({"x": [3]}, 2, 16)})
    assert loaded["counters"] == state["counters"] and (step / LEGACY).is_file()
    assert zipfile.is_zipfile(step / "replay_online.npz")


def test_the_conversion_named_in_the_error_works_on_that_path(tmp_path):
    step = tmp_path / "checkpoints" / "step_2"
    step.mkdir(parents=True)
    torch.save(small_state(), step / LEGACY)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(step, {})
    command = str(err.value).split("if you trust this file: ")[1].split()
    assert command[:4] == ["python", "-m", "robolearn.rl.checkpoint", "convert"]
    assert convert_legacy(command[4]) == [step]
    assert load_checkpoint(step, {})["counters"] == {"env_steps": 10, "updates": 1}
