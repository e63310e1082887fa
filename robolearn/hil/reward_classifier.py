"""A learned success classifier: HIL-SERL's reward on a robot with no success sensor.

**Labels.** A dataset row ``t`` holds the observation before action ``t`` and ``is_success`` after it, so
observation ``t`` is labelled with ``is_success[t - 1]`` (:func:`frame_labels`); a successful episode with no
flagged step (a person's y key labelled the episode) labels its last observation. An episode that *ends* on
success never stores the successful observation, so record classifier data with the success state held
(in sim: ``robolearn collect ... task.terminate_on_success=false``), as HIL-SERL records its positives.

**Model and training.** :func:`train_classifier` fits ``p(success | o)`` over chosen observation keys
(default: the ``pixels/*`` keys if any, else every state key): :class:`~robolearn.rl.networks.ObsEncoder`
(state standardised with training statistics, a small CNN per camera) and an MLP head giving one logit.
Episodes, not frames, are split into train and validation (seeded, stratified by outcome): neighbouring frames
are near copies. Every batch is half successful frames, half not; images get DrQ random shifts; BCE, Adam.
Balanced batches calibrate ``p`` to equal priors, so 0.5 is the balanced-accuracy threshold; a higher one
trades recall for precision (a false positive ends a HIL episode with reward 1, which a policy exploits).

Commands::

    robolearn reward-classifier train --dataset DIR [--dataset DIR ...] --out DIR [--keys K ...] [--steps N]
        [--batch-size B] [--lr LR] [--val-fraction F] [--seed S] [--threshold T] [--force]
    robolearn reward-classifier eval --classifier DIR --dataset DIR [--dataset DIR ...] [--threshold T]

The output directory holds ``model.pt``, ``classifier.yaml`` (keys, shapes, network, training config) and
``metrics.json`` (held-out metrics: :func:`binary_metrics`). It is written as a temporary sibling and renamed
into place, so a crash never leaves a half-written classifier; an existing one is replaced only with
``force``. In a HIL run ``reward_classifier=DIR`` replaces the env's reward (:mod:`robolearn.hil.reward_wrapper`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from robolearn.core.durable import atomic_write_bytes, fsync_dir
from robolearn.rl.augment import augment_obs
from robolearn.rl.devices import module_device, resolve_device
from robolearn.rl.networks import ObsEncoder, is_pixel_key, mlp

FORMAT = "robolearn.success_classifier/1"
WEIGHTS_FILE, CONFIG_FILE, METRICS_FILE = "model.pt", "classifier.yaml", "metrics.json"


@dataclass
class RewardClassifierConfig:
    """``robolearn reward-classifier train``: a success classifier from labelled dataset frames."""

    datasets: list[str] = field(default_factory=list)
    """Dataset directories (their ``is_success`` step flags are the labels)."""
    out: str = ""
    """Output directory of the classifier."""
    keys: list[str] = field(default_factory=list)
    """Observation keys to classify (empty: the pixel keys if the datasets have any, else every state key)."""
    steps: int = 2000
    """Gradient steps."""
    batch_size: int = 128
    """Frames per step, half successful and half not."""
    lr: float = 3e-4
    """Adam learning rate."""
    val_fraction: float = 0.25
    """Share of episodes (of each outcome) held out for validation."""
    seed: int = 0
    """Seeds the split, the sampling, the augmentation and the weights."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden widths of the MLP head."""
    pixel_features: int = 64
    """Features per camera image."""
    shift_pad: int = 4
    """Random-shift augmentation of images (pixels; 0: none)."""
    threshold: float = 0.5
    """Success when p >= threshold (the metrics' threshold and the saved default)."""
    force: bool = False
    """Replace an existing classifier at ``out``."""
    device: str = "auto"
    """Torch device of the training: auto, cpu, cuda, cuda:N or mps (:mod:`robolearn.rl.devices`). auto takes cuda
    if torch sees a GPU, else mps, else cpu: on a machine without an accelerator that is cpu, so the default
    changes nothing there. The saved weights load on any device."""

    def validate(self) -> None:
        if not self.datasets or not self.out:
            raise ValueError("a classifier needs at least one dataset and an output directory")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError(f"steps must be >= 1 and batch_size >= 2, got {self.steps}, {self.batch_size}")
        if not 0 <= self.val_fraction < 1 or not 0 < self.threshold < 1:
            raise ValueError(f"val_fraction must be in [0, 1) and threshold in (0, 1), got {self.val_fraction}, "
                             f"{self.threshold}")
        resolve_device(self.device)  # misspelt, or a device this machine lacks


class SuccessNet(nn.Module):
    """Dict observation (each ``(B, *shape)``; images uint8 ``(B, H, W, 3)``) -> success logit ``(B,)``."""

    def __init__(self, obs_shapes: Mapping[str, Sequence[int]], hidden: Sequence[int], pixel_features: int) -> None:
        super().__init__()
        self.encoder = ObsEncoder(obs_shapes, pixel_features)
        self.head = mlp(self.encoder.out_dim, hidden, 1)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.encoder(obs)).squeeze(-1)


@dataclass
class Frames:
    """``N`` labelled frames of ``E`` episodes: ``obs[key]`` ``(N, *shape)``, ``label`` ``(N,)`` bool
    (:func:`frame_labels`), ``episode`` ``(N,)`` int64 episode number in ``0..E-1``."""

    obs: dict[str, np.ndarray]
    label: np.ndarray
    episode: np.ndarray

    def subset(self, episodes: np.ndarray) -> Frames:
        m = np.isin(self.episode, episodes)
        return Frames({k: v[m] for k, v in self.obs.items()}, self.label[m], self.episode[m])


def select_keys(available: Mapping[str, Sequence[int]], keys: Sequence[str] = (), where: str = "the dataset"
                ) -> list[str]:
    """``keys`` checked against ``available`` (key -> shape), or the default: pixel keys, else state keys."""
    for key in keys:
        if key not in available:
            raise KeyError(f"unknown observation key {key!r}: {where} has {sorted(available)}")
    if keys:
        return list(keys)
    pixels = [k for k, s in available.items() if is_pixel_key(k, s)]
    return pixels or [k for k in available if not is_pixel_key(k, available[k])]


def frame_labels(is_success: np.ndarray, episode_success: bool) -> np.ndarray:
    """Success labels ``(T,)`` of an episode's observations from its steps' ``is_success`` ``(T,)``.

    Row ``t`` holds the observation before action ``t`` and the success after it, so observation ``t`` shows
    the state step ``t - 1`` ended in: its label is ``is_success[t - 1]`` (observation 0: False). A successful
    episode with no flagged step (a person's y key labels the episode) labels its last observation.
    """
    label = np.zeros(len(is_success), bool)
    label[1:] = is_success[:-1]
    if episode_success and not is_success.any() and len(label):
        label[-1] = True
    return label


def load_frames(roots: Sequence[str | Path], keys: Sequence[str] = ()) -> tuple[Frames, dict[str, tuple[int, ...]]]:
    """Every step of every episode of the datasets at ``roots`` and the observation shapes of ``keys``."""
    from robolearn.datasets.reader import EpisodeDataset

    obs: dict[str, list[np.ndarray]] = {}
    labels, episodes, shapes = [], [], {}
    for root in roots:
        ds = EpisodeDataset(root)
        if len(ds) == 0:
            raise ValueError(f"dataset {root} has no episodes")
        available = {k: tuple(f.shape) for k, f in ds.info.observation.items()}
        chosen = select_keys(available, keys or list(shapes), f"dataset {root}")
        for key in chosen:
            if shapes.setdefault(key, available[key]) != available[key]:
                raise ValueError(f"{key!r} is {available[key]} in {root} but {shapes[key]} in an earlier dataset")
        for i in range(len(ds)):
            ep = ds.episode(i, obs_keys=chosen)
            if len(ep) == 0:
                continue
            for key in chosen:
                obs.setdefault(key, []).append(ep.obs[key])
            labels.append(frame_labels(ep.is_success, ep.record.success))
            episodes.append(np.full(len(ep), len(episodes), np.int64))
    frames = Frames({k: np.concatenate(v) for k, v in obs.items()}, np.concatenate(labels), np.concatenate(episodes))
    return frames, shapes


def split_episodes(frames: Frames, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation episode numbers: ``val_fraction`` of the successful episodes (those with a
    successful frame) and of the others, drawn with ``seed``; a group of one episode stays in training."""
    rng = np.random.default_rng(seed)
    n = int(frames.episode.max()) + 1
    has_success = np.zeros(n, bool)
    has_success[frames.episode[frames.label]] = True
    train, val = [], []
    for group in (np.flatnonzero(has_success), np.flatnonzero(~has_success)):
        group = rng.permutation(group)
        k = min(round(val_fraction * len(group)), len(group) - 1) if len(group) > 1 else 0
        val.append(group[:k])
        train.append(group[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@torch.no_grad()
def predict_probs(net: SuccessNet, obs: Mapping[str, np.ndarray], chunk: int = 512) -> np.ndarray:
    """Success probabilities ``(B,)`` float32 of a batched numpy observation (in chunks of ``chunk`` frames, on
    the net's device)."""
    n, device = len(next(iter(obs.values()))), module_device(net)
    out = [torch.sigmoid(net({k: torch.as_tensor(np.asarray(v[s:s + chunk]), device=device) for k, v in obs.items()}))
           for s in range(0, n, chunk)]
    return torch.cat(out).cpu().numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def binary_metrics(prob: np.ndarray, label: np.ndarray, episode: np.ndarray, threshold: float) -> dict[str, Any]:
    """Frame metrics at ``threshold`` (None where undefined) and episode counts: ``failed_episodes_fired``
    held-out failures in which it fired at least once (a HIL episode would wrongly end with reward 1),
    ``success_episodes_detected`` successful episodes in which it fired at least once."""
    pred, label = prob >= threshold, label.astype(bool)
    tp, fp = int((pred & label).sum()), int((pred & ~label).sum())
    tn, fn = int((~pred & ~label).sum()), int((~pred & label).sum())

    def ratio(a: int, b: int) -> float | None:
        return a / b if b else None

    tpr, tnr = ratio(tp, tp + fn), ratio(tn, tn + fp)
    rates = [r for r in (tpr, tnr) if r is not None]
    eps = np.unique(episode)
    ep_pos = np.array([label[episode == e].any() for e in eps], bool)
    ep_fired = np.array([pred[episode == e].any() for e in eps], bool)
    return {"threshold": threshold, "frames": int(len(label)), "positives": int(label.sum()),
            "accuracy": ratio(tp + tn, len(label)), "balanced_accuracy": float(np.mean(rates)) if rates else None,
            "precision": ratio(tp, tp + fp), "recall": tpr, "specificity": tnr, "tp": tp, "fp": fp, "tn": tn,
            "fn": fn, "episodes": int(len(eps)), "success_episodes": int(ep_pos.sum()),
            "success_episodes_detected": int((ep_fired & ep_pos).sum()), "failed_episodes": int((~ep_pos).sum()),
            "failed_episodes_fired": int((ep_fired & ~ep_pos).sum())}


@dataclass
class TrainResult:
    out: str
    metrics: dict[str, Any]
    """Held-out metrics (empty when ``val_fraction`` is 0)."""
    losses: list[float]
    """BCE of every step."""
    wall_s: float
    train_frames: int
    train_positives: int


def train_classifier(cfg: RewardClassifierConfig, progress: bool = True) -> TrainResult:
    """Train on ``cfg.datasets``, evaluate on the held-out episodes, save to ``cfg.out`` (see the module doc)."""
    from tqdm import tqdm

    cfg.validate()
    device = resolve_device(cfg.device)
    t0, out = time.perf_counter(), Path(cfg.out)
    if out.exists() and not cfg.force:
        raise FileExistsError(f"{out} already exists; pass --force (force=true) to replace it")
    frames, shapes = load_frames(cfg.datasets, cfg.keys)
    where = ", ".join(map(str, cfg.datasets))
    if not frames.label.any():
        raise ValueError(f"no successful frames in {where}: an episode that ends on success stores no successful "
                         "observation; record the success state held (sim: task.terminate_on_success=false)")
    if frames.label.all():
        raise ValueError(f"no failed frames in {where}: a success classifier needs both labels")
    train_eps, val_eps = split_episodes(frames, cfg.val_fraction, cfg.seed)
    train = frames.subset(train_eps)
    torch.manual_seed(cfg.seed)
    net = SuccessNet(shapes, cfg.hidden, cfg.pixel_features)
    if net.encoder.state_keys:
        x = net.encoder.state_features({k: torch.as_tensor(v) for k, v in train.obs.items()})
        std = x.std(0)
        net.encoder.set_normalization(x.mean(0), torch.where(std > 1e-6, std, torch.ones_like(std)))
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    pos, neg = np.flatnonzero(train.label), np.flatnonzero(~train.label)
    rng, gen = np.random.default_rng(cfg.seed + 1), torch.Generator().manual_seed(cfg.seed + 1)
    half = cfg.batch_size // 2
    target = torch.cat([torch.ones(half), torch.zeros(cfg.batch_size - half)]).to(device)
    losses: list[float] = []
    net.train()
    for _ in tqdm(range(cfg.steps), desc="reward classifier", disable=not progress, unit="step", mininterval=1.0):
        idx = np.concatenate([rng.choice(pos, half), rng.choice(neg, cfg.batch_size - half)])
        obs = augment_obs({k: torch.as_tensor(v[idx], device=device) for k, v in train.obs.items()}, cfg.shift_pad, gen)
        loss = F.binary_cross_entropy_with_logits(net(obs), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    metrics: dict[str, Any] = {}
    if len(val_eps):
        val = frames.subset(val_eps)
        metrics = binary_metrics(predict_probs(net, val.obs), val.label, val.episode, cfg.threshold)
    metrics.update(train_frames=int(len(train.label)), train_positives=int(len(pos)),
                   train_episodes=int(len(train_eps)), final_loss=float(np.mean(losses[-50:])))
    meta = {"format": FORMAT, "keys": list(shapes), "obs_shapes": {k: list(s) for k, s in shapes.items()},
            "hidden": list(cfg.hidden), "pixel_features": cfg.pixel_features, "threshold": cfg.threshold,
            "train": {**asdict(cfg), "datasets": [str(Path(d).resolve()) for d in cfg.datasets]}}
    wall = time.perf_counter() - t0
    metrics["wall_s"] = round(wall, 2)
    save_classifier(out, net, meta, metrics, cfg.force)
    return TrainResult(str(out), metrics, losses, wall, int(len(train.label)), int(len(pos)))


def save_classifier(out: str | Path, net: SuccessNet, meta: Mapping[str, Any], metrics: Mapping[str, Any],
                    force: bool = False) -> Path:
    """Write the classifier directory atomically: a temporary sibling, fsynced, renamed to ``out``.

    With ``force`` an existing ``out`` is first renamed aside and deleted after the new one is in place.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buf)  # loads on any device
        atomic_write_bytes(tmp / WEIGHTS_FILE, buf.getvalue())
        atomic_write_bytes(tmp / CONFIG_FILE, yaml.safe_dump(dict(meta), sort_keys=False).encode())
        atomic_write_bytes(tmp / METRICS_FILE, (json.dumps(dict(metrics), indent=2) + "\n").encode())
        old = None
        if out.exists():
            if not force:
                raise FileExistsError(f"{out} already exists; pass --force (force=true) to replace it")
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


class SuccessClassifier:
    """A trained classifier, loaded from its directory: ``predict(obs) -> p(success)``."""

    def __init__(self, net: SuccessNet, meta: Mapping[str, Any], path: str | Path = "") -> None:
        self.net, self.meta, self.path = net.eval(), dict(meta), str(path)
        self.keys: list[str] = list(meta["keys"])
        self.obs_shapes: dict[str, tuple[int, ...]] = {k: tuple(s) for k, s in meta["obs_shapes"].items()}
        self.threshold = float(meta["threshold"])
        """The threshold it was evaluated at (its default)."""

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> SuccessClassifier:
        """The classifier saved in ``directory``, on ``device`` (a device setting or a ``torch.device``)."""
        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{directory}: no {CONFIG_FILE}; not a success classifier (train one with "
                                    "`robolearn reward-classifier train`)")
        meta = yaml.safe_load((directory / CONFIG_FILE).read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{directory / CONFIG_FILE}: not a {FORMAT} classifier")
        where = resolve_device(device)
        net = SuccessNet(meta["obs_shapes"], meta["hidden"], meta["pixel_features"]).to(where)
        net.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location=where, weights_only=True))
        return cls(net, meta, directory)

    def predict(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Success probabilities ``(B,)`` float32 of a batched observation ``{key: (B, *shape)}`` (extra keys
        are ignored; images uint8 ``(B, H, W, 3)``)."""
        picked = {}
        for key in self.keys:
            if key not in obs:
                raise KeyError(f"the observation has no {key!r}, which the success classifier {self.path} was "
                               f"trained on (it needs {self.keys}; got {sorted(obs)})")
            value = np.asarray(obs[key])
            if value.shape[1:] != self.obs_shapes[key]:
                raise ValueError(f"{key!r} has shape {value.shape}; the classifier {self.path} expects "
                                 f"(B, {', '.join(map(str, self.obs_shapes[key]))})")
            picked[key] = value
        return predict_probs(self.net, picked)


def evaluate_classifier(classifier: str | Path | SuccessClassifier, datasets: Sequence[str | Path],
                        threshold: float | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`binary_metrics` of a saved classifier (loaded on ``device``) on every frame of ``datasets``."""
    clf = classifier if isinstance(classifier, SuccessClassifier) else SuccessClassifier.load(classifier, device)
    frames, shapes = load_frames(datasets, clf.keys)
    for key, shape in shapes.items():
        if shape != clf.obs_shapes[key]:
            raise ValueError(f"{key!r} is {shape} in the datasets but the classifier expects {clf.obs_shapes[key]}")
    prob = clf.predict(frames.obs)
    return binary_metrics(prob, frames.label, frames.episode, clf.threshold if threshold is None else threshold)
