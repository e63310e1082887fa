"""The learned success classifier on real PandaLift rollouts: training, held-out metrics, the saved directory,
input errors, the CLI, and the HIL env whose reward and terminations come from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests_support import can_render

from robolearn.cli.main import main
from robolearn.collect import CollectConfig, collect
from robolearn.core.protocols import Feature
from robolearn.datasets.format import DatasetInfo
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.writer import EpisodeWriter
from robolearn.hil.config import HILConfig
from robolearn.hil.reward_classifier import (
    CONFIG_FILE,
    METRICS_FILE,
    RewardClassifierConfig,
    SuccessClassifier,
    frame_labels,
    load_frames,
    train_classifier,
)
from robolearn.hil.run import make_env, run_hil
from robolearn.refine.methods import ResidualParams
from robolearn.rl.learner import LearnerConfig
from robolearn.wiring import hil_sources

torch.set_num_threads(1)
ENV = "robolearn/PandaLift-v0"
HOLD = {"terminate_on_success": False}  # successful episodes keep the cube up: many successful frames


def tiny(datasets: list[str], out: str, **kw) -> RewardClassifierConfig:
    base = {"steps": 400, "batch_size": 64, "hidden": [64, 64], "lr": 1e-3, "val_fraction": 0.34}
    return RewardClassifierConfig(datasets=datasets, out=out, **{**base, **kw})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """8 clean-expert and 8 noisy-expert (noise 1.5: some fail) episodes of real PandaLift rollouts."""
    root = tmp_path_factory.mktemp("rc")
    paths = {"expert": str(root / "expert"), "noisy": str(root / "noisy")}
    collect(CollectConfig(ENV, episodes=8, out=paths["expert"], num_envs=2, seed=0, task=HOLD), progress=False)
    collect(CollectConfig(ENV, episodes=8, out=paths["noisy"], noise=1.5, num_envs=2, seed=100, task=HOLD),
            progress=False)
    paths["root"] = str(root)
    return paths


@pytest.fixture(scope="module")
def trained(data) -> tuple[str, dict]:
    result = train_classifier(tiny([data["expert"], data["noisy"]], data["root"] + "/clf"), progress=False)
    return result.out, result.metrics


def test_held_out_episodes_are_classified_well(data, trained) -> None:
    out, m = trained
    # classifier seeds 0-7 on this data: balanced accuracy 0.87-1.00, precision >= 0.95, recall >= 0.74
    assert m["balanced_accuracy"] >= 0.8 and m["precision"] >= 0.85 and m["recall"] >= 0.6
    assert m["failed_episodes_fired"] == 0 and m["success_episodes_detected"] >= 1
    assert m["positives"] > 20 and m["threshold"] == 0.5 and m["episodes"] >= 4
    saved = json.loads((Path(out) / METRICS_FILE).read_text())
    assert saved["balanced_accuracy"] == m["balanced_accuracy"]


def test_saved_classifier_loads_and_predicts_the_same(data, trained, tmp_path) -> None:
    out, m = trained
    frames, _ = load_frames([data["noisy"]])
    clf = SuccessClassifier.load(out)
    prob = clf.predict(frames.obs)
    assert prob.shape == (len(frames.label),) and prob.dtype == np.float32 and ((0 <= prob) & (prob <= 1)).all()
    np.testing.assert_array_equal(SuccessClassifier.load(out).predict(frames.obs), prob)
    assert sorted(clf.keys) == sorted(frames.obs)  # state keys by default
    with pytest.raises(KeyError, match="no 'object_pos', which the success classifier"):
        clf.predict({k: v for k, v in frames.obs.items() if k != "object_pos"})
    with pytest.raises(FileExistsError, match="--force"):
        train_classifier(tiny([data["expert"], data["noisy"]], out, steps=1), progress=False)
    assert not list(Path(out).parent.glob(".clf.*"))  # no temporary directory left behind


def write_labels(root: str, flags: list[bool], success: bool | None = None) -> str:
    """A one-episode dataset whose steps carry the ``is_success`` ``flags``."""
    info = DatasetInfo(observation={"x": Feature((2,))}, action=Feature((1,)), fps=20.0, env_id=ENV)
    with EpisodeWriter(root, info) as writer:
        writer.begin_episode()
        for i, flag in enumerate(flags):
            writer.add_step({"x": np.full(2, i, np.float32)}, np.zeros(1, np.float32), reward=0.0,
                            is_success=flag, intervention=False)
        writer.end_episode(success=success)
    return root


def test_frame_labels_follow_the_observation() -> None:
    # observation t shows the state step t - 1 ended in; the last step's success has no stored observation
    np.testing.assert_array_equal(frame_labels(np.array([0, 0, 1, 1, 1], bool), True), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(frame_labels(np.array([0, 0, 1], bool), True), [0, 0, 0])
    # a person's y key labelled the episode (no step flagged): its last observation is the successful one
    np.testing.assert_array_equal(frame_labels(np.array([0, 0, 0], bool), True), [0, 0, 1])


def test_bad_inputs_are_named(data, tmp_path) -> None:
    cases = [(write_labels(str(tmp_path / "ok"), [False], success=True), "no failed frames"),
             (write_labels(str(tmp_path / "fail"), [False, False, True]), "no successful frames")]
    EpisodeWriter(tmp_path / "empty", DatasetInfo({"x": Feature((2,))}, Feature((1,)), 20.0)).close()
    cases.append((str(tmp_path / "empty"), "has no episodes"))
    for i, (ds, message) in enumerate(cases):
        with pytest.raises(ValueError, match=message):
            train_classifier(tiny([ds], str(tmp_path / f"out{i}")), progress=False)
    with pytest.raises(KeyError, match="unknown observation key 'cube_pos'"):
        train_classifier(tiny([data["expert"]], str(tmp_path / "out3"), keys=["cube_pos"]), progress=False)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_cli_train_force_and_eval(data, tmp_path, capsys) -> None:
    out = str(tmp_path / "cli")
    args = ["reward-classifier", "train", "--dataset", data["expert"], "--dataset", data["noisy"], "--out", out,
            "--keys", "object_pos", "gripper", "--steps", "150", "--batch-size", "32", "--val-fraction", "0.34",
            "--seed", "1", "lr=0.001", "hidden=[32]"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "held out: threshold 0.50: accuracy" in text and "balanced accuracy" in text
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert SuccessClassifier.load(out).keys == ["object_pos", "gripper"]
    capsys.readouterr()
    assert main(["reward-classifier", "eval", "--classifier", out, "--dataset", data["noisy"], "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["frames"] == len(load_frames([data["noisy"]])[0].label) and metrics["balanced_accuracy"] > 0.5
    assert main(["reward-classifier", "eval", "--classifier", str(tmp_path), "--dataset", data["noisy"]]) == 2
    assert f"no {CONFIG_FILE}" in capsys.readouterr().err


def test_hil_env_reward_and_terminations_come_from_the_classifier(trained) -> None:
    out, _ = trained
    clf = SuccessClassifier.load(out)
    cfg = HILConfig(env_id=ENV, base="expert", residual=ResidualParams(0.25),
                    num_envs=2, seed=5, reward_classifier=out, classifier_threshold=0.5)
    cfg.sim_human.state_threshold = 0.0  # its default state key is PegInsert's
    env = make_env(cfg, hil_sources(cfg))
    env.reset(seed=5)
    fired = truly = 0
    for _ in range(90):
        _, reward, term, trunc, info = env.step(np.zeros((2, 5), np.float32))
        expected = clf.predict(info["final_obs"]) >= 0.5  # the observation after the action
        np.testing.assert_array_equal(reward, expected.astype(np.float32))
        assert term[expected].all() and not (trunc & expected).any()
        fired += int(expected.sum())
        truly += int(info["is_success"][expected].sum())  # the env's own success stays in info
    assert fired >= 2 and truly >= 1  # the clean expert lifts the cube in both envs
    env.close()


def test_hil_run_records_classifier_rewards_and_true_success(trained, tmp_path) -> None:
    out, _ = trained
    cfg = HILConfig(env_id=ENV, base="expert", residual=ResidualParams(0.25),
                    num_envs=2, seed=5, total_env_steps=160, min_buffer=10_000,
                    reward_classifier=out, learner=LearnerConfig(algo="td3", hidden=[32, 32], drq_pad=0))
    cfg.sim_human.state_threshold = 0.0
    result = run_hil(cfg, hil_sources(cfg), tmp_path / "run")
    reader = EpisodeDataset(tmp_path / "run" / "dataset")
    assert result.episodes == len(reader) >= 2
    rewards = [reader.episode(i).reward for i in range(len(reader))]
    ended = [r[-1] == 1.0 for r in rewards]  # the classifier's reward ends its episodes
    assert any(ended) and all(set(np.unique(r)) <= {0.0, 1.0} for r in rewards)
    assert result.successes == sum(reader.episode(i).is_success[-1] for i in range(len(reader)))


def write_pixel_dataset(root: str, episodes: int = 4, length: int = 12) -> str:
    """Noisy 32x32 ``pixels/front`` frames in which a successful state shows a bright patch."""
    rng = np.random.default_rng(0)
    info = DatasetInfo(observation={"pixels/front": Feature((32, 32, 3), "uint8", "pixel")}, action=Feature((1,)),
                       fps=20.0, env_id=ENV)
    with EpisodeWriter(root, info) as writer:
        for e in range(episodes):
            shown = np.arange(length) >= length // 2 + e % 2  # the state observation t shows
            writer.begin_episode()
            for t in range(length):
                img = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
                img[8:20, 8:20] += np.uint8(120 * shown[t])
                flag = bool(shown[t + 1]) if t + 1 < length else True  # success after the action
                writer.add_step({"pixels/front": img}, np.zeros(1, np.float32), reward=0.0, is_success=flag,
                                intervention=False)
            writer.end_episode()
    return root


@pytest.mark.skipif(not can_render(), reason="no offscreen GL here")
def test_pixel_classifier_trains_and_drives_the_hil_env(tmp_path) -> None:
    ds = write_pixel_dataset(str(tmp_path / "px"))
    result = train_classifier(tiny([ds], str(tmp_path / "clf"), steps=40, batch_size=16, val_fraction=0.0),
                              progress=False)
    assert np.mean(result.losses[-10:]) < 0.5 * np.mean(result.losses[:10])
    clf = SuccessClassifier.load(result.out)
    assert clf.keys == ["pixels/front"] and clf.obs_shapes["pixels/front"] == (32, 32, 3)
    frames, _ = load_frames([ds])
    assert clf.predict({"pixels/front": frames.obs["pixels/front"][:5]}).shape == (5,)
    cfg = HILConfig(env_id=ENV, base="expert", residual=ResidualParams(0.25),
                    num_envs=2, seed=1, reward_classifier=result.out)
    cfg.sim_human.state_threshold = 0.0
    env = make_env(cfg, hil_sources(cfg))
    obs = env.reset(seed=1)
    assert "pixels/front" not in obs and "pixels/front" not in env.obs_shapes  # rendered for the classifier only
    _, reward, *_ = env.step(np.zeros((2, 5), np.float32))
    assert reward.shape == (2,) and set(np.unique(reward)) <= {0.0, 1.0}
    env.close()
