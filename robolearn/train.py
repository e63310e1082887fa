"""Training of the base policies (BC, diffusion) from demonstration batches.

``train(cfg)`` runs the loop: AdamW with warm-up + cosine learning rate, gradient clipping, an EMA copy
of the weights, scalars to ``metrics.jsonl`` (and TensorBoard when installed), periodic checkpoints
(``<run_dir>/checkpoints/step_<N>/``: the EMA policy as a loadable checkpoint plus ``train_state.pt``
with raw weights, optimizer, LR schedule and step) and optional periodic rollout evaluation in sim.
Started again with the same ``run_dir`` it resumes from the latest checkpoint. Counts are checked before
the run directory is made (:func:`check_config`); a NaN or infinite loss stops training with
:class:`NonFiniteLossError` before the bad step reaches the weights, so the last checkpoint stays good.

Batches follow the sampler contract ``{"obs": {key: (B, To, *shape)}, "action": (B, Tp, Da),
"action_is_pad": (B, Tp)}``; tests pass any iterable of such batches and a stats dict.
"""

from __future__ import annotations

import itertools
import logging
import math
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from robolearn.core.checkpoints import CheckpointError, checkpoint_candidates
from robolearn.core.config import ConfigError, save_config
from robolearn.policies.base import Batch, ChunkPolicy
from robolearn.policies.checkpoint import load, make_policy, save
from robolearn.policies.configuration import PolicyConfig
from robolearn.policies.normalizer import StatsDict
from robolearn.rl.devices import resolve_device
from robolearn.rl.scalar_log import ScalarLog


@dataclass
class DataConfig:
    """Where demonstrations come from and how they are batched."""

    path: str = ""
    """Dataset root directory (robolearn episode format)."""
    batch_size: int = 64
    """Windows per training batch."""
    max_episodes: int = 0
    """Train on the first N usable episodes only (0: all), for success-vs-demonstrations curves."""
    only_success: bool = False
    """Use successful episodes only."""
    num_workers: int = 0
    """Data-loading worker processes."""


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine (or constant) decay."""

    lr: float = 1e-4
    """Peak learning rate."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    warmup_steps: int = 500
    """Linear warm-up from 0 to ``lr``."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Decay after warm-up (cosine to 0 at the last step)."""
    grad_clip_norm: float = 10.0
    """Clip the global gradient norm to this value (0 disables)."""


@dataclass
class EvalConfig:
    """Periodic rollout evaluation in sim during training."""

    env_id: str = ""
    """Gymnasium id, e.g. ``robolearn/PandaLift-v0`` (empty: no rollouts)."""
    every: int = 0
    """Evaluate every N steps (0: only at the end when env_id is set)."""
    episodes: int = 20
    """Episodes per evaluation."""
    seed: int = 10_000
    """Seed of the first evaluation episode (episode i uses seed + i)."""


@dataclass
class TrainConfig:
    """A training run (``robolearn train --config configs/bc/<preset>.yaml key=value ...``)."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The policy to train."""
    data: DataConfig = field(default_factory=DataConfig)
    """Demonstration data."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Rollout evaluation."""
    steps: int = 20_000
    """Gradient steps."""
    ema_decay: float = 0.999
    """EMA decay of the saved weights (warmed up as min(decay, (1+n)/(10+n))); 0 saves raw weights."""
    seed: int = 0
    """Seed of training randomness (noise, diffusion steps, augmentation, data order)."""
    log_every: int = 100
    """Log scalars every N steps."""
    save_every: int = 5_000
    """Write a checkpoint every N steps (and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (older ones are deleted)."""
    run_dir: str = "runs/default"
    """Output directory; an existing run there is resumed."""
    device: str = "auto"
    """Torch device of the policy, the batches and the optimizer: auto, cpu, cuda, cuda:N or mps
    (:mod:`robolearn.rl.devices`). auto takes cuda if torch sees a GPU, else mps, else cpu: on a machine without
    an accelerator that is cpu, so the default changes nothing there. Checkpoints load on any device; the
    evaluation envs step on the CPU."""
    threads: int = 1
    """Torch CPU threads (0: torch's default, one per core). One is fastest for state-based policies on a
    shared CPU: with more, OpenMP workers spin-wait on cores that other processes hold."""
    progress: bool = True
    """Show a progress bar."""


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and the likely causes."""


POSITIVE = ("steps", "log_every", "save_every", "keep_checkpoints", "data.batch_size", "eval.episodes")
NON_NEGATIVE = ("data.max_episodes", "data.num_workers", "eval.every", "optim.warmup_steps", "threads")


def check_config(cfg: TrainConfig) -> None:
    """Refuse counts that cannot run (``steps: -5``) and a device that cannot (``device: gpu``, ``cuda`` without
    one) with a one-line :class:`ConfigError` naming the key."""
    for keys, low in ((POSITIVE, 1), (NON_NEGATIVE, 0)):
        for key in keys:
            value = cfg
            for part in key.split("."):
                value = getattr(value, part)
            if value < low:
                raise ConfigError(f"{key} must be >= {low}, got {value}; set {key} to {low} or more")
    for key, value in (("optim.lr", cfg.optim.lr), ("optim.grad_clip_norm", cfg.optim.grad_clip_norm)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{key} must be a finite number >= 0, got {value}")
    try:
        resolve_device(cfg.device)  # misspelt, or a device this machine lacks: before the run directory is made
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_loss(loss: torch.Tensor, step: int, cfg: TrainConfig, ckpt: Path | None) -> None:
    if bool(torch.isfinite(loss.detach()).all()):
        return
    kept = f"the last good checkpoint is {ckpt}" if ckpt is not None else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"train: loss is {float(loss.detach())} at step {step + 1}; stopped before updating the weights ({kept}); "
        f"likely causes: a learning rate too high (optim.lr={cfg.optim.lr}) or extreme values in the data "
        f"(check with 'robolearn dataset verify {cfg.data.path or '<dataset>'}')")


@dataclass
class TrainResult:
    """What ``train`` returns."""

    run_dir: Path
    step: int
    metrics: dict[str, float]
    checkpoint: Path | None = None
    history: list[dict[str, float]] = field(default_factory=list)


class EMA:
    """Exponential moving average of a policy's floating-point state (parameters and buffers)."""

    def __init__(self, model: ChunkPolicy, decay: float) -> None:
        self.decay = decay
        self.model = make_policy(model.cfg).to(model.device)
        self.model.load_state_dict(model.state_dict())
        self.model.eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: ChunkPolicy) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_t, t in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if ema_t.dtype.is_floating_point:
                ema_t.lerp_(t, 1.0 - decay)
            else:
                ema_t.copy_(t)


def infer_shapes(cfg: PolicyConfig, batch: Batch) -> None:
    """Fill ``cfg.obs_shapes`` / ``cfg.action_dim`` from a batch when the preset leaves them empty."""
    if not cfg.obs_shapes:
        keys = cfg.obs_keys or sorted(batch["obs"])  # type: ignore[arg-type]
        missing = [k for k in keys if k not in batch["obs"]]  # type: ignore[operator]
        if missing:
            raise KeyError(f"policy.obs_keys {missing} not in the data; it has {sorted(batch['obs'])}")  # type: ignore[arg-type]
        cfg.obs_shapes = {k: list(batch["obs"][k].shape[2:]) for k in keys}  # type: ignore[index]
    if cfg.action_dim <= 0:
        cfg.action_dim = int(batch["action"].shape[-1])  # type: ignore[union-attr]


def lr_lambda(cfg: OptimConfig, total: int):
    """Multiplier of the peak learning rate at step ``s``: linear warm-up then cosine or constant."""

    def f(s: int) -> float:
        if s < cfg.warmup_steps:
            return (s + 1) / max(cfg.warmup_steps, 1)
        if cfg.schedule == "constant":
            return 1.0
        progress = (s - cfg.warmup_steps) / max(total - cfg.warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return f


def _cycle(batches: Iterable[Batch]) -> Iterator[Batch]:
    """Repeat a finite iterable of batches (a sampler may be infinite already)."""
    while True:
        empty = True
        for b in batches:
            empty = False
            yield b
        if empty:
            raise ValueError("training data yielded no batch")


def load_data(cfg: TrainConfig) -> tuple[Iterable[Batch], StatsDict]:
    """Shuffled training batches and normalization statistics of the dataset at ``cfg.data.path``.

    Statistics are computed over the selected episodes only (the first ``max_episodes``).
    """
    from robolearn.datasets.reader import EpisodeDataset
    from robolearn.datasets.sampler import WindowDataset, make_loader, select_episodes

    if not cfg.data.path:
        raise ValueError("data.path is empty: name a dataset directory (robolearn episode format)")
    dataset = EpisodeDataset(cfg.data.path)
    episodes = select_episodes(dataset, only_success=cfg.data.only_success)
    if cfg.data.max_episodes > 0:
        if len(episodes) < cfg.data.max_episodes:
            raise ValueError(f"data.max_episodes={cfg.data.max_episodes} but {cfg.data.path} has only "
                             f"{len(episodes)} usable episodes")
        episodes = episodes[: cfg.data.max_episodes]
    windows = WindowDataset(dataset, cfg.policy.n_obs_steps, cfg.policy.horizon, episodes,
                            cfg.policy.obs_keys or None)
    loader = make_loader(windows, cfg.data.batch_size, seed=cfg.seed, num_workers=cfg.data.num_workers,
                         drop_last=len(windows) >= cfg.data.batch_size)
    return loader, dataset.stats(episodes)


def save_checkpoint(
    run_dir: Path, step: int, policy: ChunkPolicy, ema: EMA | None, optim, sched, keep: int
) -> Path:
    """``checkpoints/step_<N>/``: the (EMA) policy checkpoint plus ``train_state.pt`` for resuming."""
    ckpt = run_dir / "checkpoints" / f"step_{step:08d}"
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(ema.model if ema is not None else policy, tmp)
    state = {"step": step, "model": policy.state_dict(), "optimizer": optim.state_dict(),
             "lr_schedule": sched.state_dict(), "ema_updates": ema.updates if ema else 0}
    torch.save(state, tmp / "train_state.pt")
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)
    old = sorted(p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("step_") and p.is_dir())
    for p in old[: max(len(old) - keep, 0)]:
        shutil.rmtree(p)
    return ckpt


def restore(ckpt: Path, policy: ChunkPolicy, ema: EMA | None, optim, sched) -> int:
    """Load raw weights, optimizer, LR schedule and EMA from ``ckpt``; returns the step."""
    try:
        state = torch.load(ckpt / "train_state.pt", map_location=policy.device, weights_only=True)
    except Exception as err:  # a truncated zip, or a pickle that weights_only refuses
        raise CheckpointError(f"{ckpt / 'train_state.pt'}: unreadable ({type(err).__name__})") from err
    policy.load_state_dict(state["model"])
    optim.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["lr_schedule"])
    if ema is not None:
        ema.model.load_state_dict(load(ckpt, device=policy.device).state_dict())
        ema.updates = int(state["ema_updates"])
    return int(state["step"])


def resume(run_dir: Path, policy: ChunkPolicy, ema: EMA | None, optim, sched) -> tuple[int, Path | None]:
    """Restore the newest checkpoint of ``run_dir`` that loads: ``(step, checkpoint)``, ``(0, None)`` for a new
    run. A damaged newer one is named on stderr and skipped; when none loads, :class:`CheckpointError`."""
    damaged = []
    for ckpt in checkpoint_candidates(run_dir, required=("train_state.pt",)):
        try:
            return restore(ckpt, policy, ema, optim, sched), ckpt
        except Exception as err:  # torch, zip and safetensors errors alike: the files are not what was saved
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
            logging.getLogger(__name__).warning("robolearn: skipping a damaged checkpoint %s (%s)", ckpt, reason)
            damaged.append(ckpt)
    if damaged:
        raise CheckpointError(f"{damaged[0]}: no checkpoint of {run_dir} loads (all {len(damaged)} damaged); "
                              f"move {run_dir / 'checkpoints'} aside to start over")
    return 0, None


def _evaluate(cfg: TrainConfig, policy: ChunkPolicy) -> dict[str, float]:
    from robolearn.evaluate import evaluate

    result = evaluate(policy, cfg.eval.env_id, episodes=cfg.eval.episodes, seed=cfg.eval.seed, progress=False)
    return {f"eval/{k}": v for k, v in result.scalars().items()}


def _setup(cfg: TrainConfig, batches: Iterable[Batch] | None, stats: StatsDict | None):
    if batches is None:
        batches, stats = load_data(cfg)
    if stats is None:
        raise ValueError("train: normalization statistics are required with explicit batches")
    stream = _cycle(batches)
    first = next(stream)
    infer_shapes(cfg.policy, first)
    policy = make_policy(cfg.policy).to(resolve_device(cfg.device))
    policy.set_stats(stats)
    return itertools.chain([first], stream), policy


def train(
    cfg: TrainConfig, batches: Iterable[Batch] | None = None, stats: StatsDict | None = None
) -> TrainResult:
    """Train ``cfg.policy``; resumes from the latest checkpoint in ``cfg.run_dir`` (see module docstring)."""
    from tqdm import tqdm

    check_config(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    stream, policy = _setup(cfg, batches, stats)
    save_config(cfg, run_dir / "config.yaml")
    optim = torch.optim.AdamW(policy.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_lambda(cfg.optim, cfg.steps))
    ema = EMA(policy, cfg.ema_decay) if cfg.ema_decay > 0 else None
    step, last = resume(run_dir, policy, ema, optim, sched)
    torch.manual_seed(cfg.seed + step)
    log, history, metrics, ckpt = ScalarLog(run_dir), [], {}, last
    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, desc=f"train {cfg.policy.type}")
    policy.train()
    while step < cfg.steps:
        loss, metrics = policy.compute_loss(next(stream))
        _check_loss(loss, step, cfg, ckpt)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip_norm > 0:
            norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.optim.grad_clip_norm)
            metrics["grad_norm"] = float(norm)
        optim.step()
        sched.step()
        if ema is not None:
            ema.update(policy)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            scalars = {f"train/{k}": v for k, v in metrics.items()} | {"train/lr": sched.get_last_lr()[0]}
            log.write(step, scalars)
            history.append({"step": step, **scalars})
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
        if step % cfg.save_every == 0 or step == cfg.steps:
            ckpt = save_checkpoint(run_dir, step, policy, ema, optim, sched, cfg.keep_checkpoints)
        evaluate_now = cfg.eval.every > 0 and step % cfg.eval.every == 0
        if cfg.eval.env_id and (evaluate_now or step == cfg.steps):
            log.write(step, _evaluate(cfg, ema.model if ema else policy))
            policy.train()
    bar.close()
    log.close()
    return TrainResult(run_dir, step, metrics, ckpt, history)
