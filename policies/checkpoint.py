"""Policy checkpoints: a directory that loads on its own.

Layout of a checkpoint directory::

    config.yaml             resolved PolicyConfig (shapes, horizons, encoders, head, sampler)
    model.safetensors       network weights (EMA weights when trained with EMA)
    normalizer.safetensors  normalization scale/offset per feature (physical -> normalized)

``load`` also accepts a training run directory (``runs/<run>``) and then picks its latest checkpoint
(``runs/<run>/checkpoints/step_<N>``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from robolearn.core.checkpoints import latest_checkpoint
from robolearn.core.config import from_dict, save_config
from robolearn.policies.base import ChunkPolicy
from robolearn.policies.bc import BCPolicy
from robolearn.policies.configuration import PolicyConfig
from robolearn.policies.diffusion import DiffusionPolicy

POLICIES: dict[str, type[ChunkPolicy]] = {"bc": BCPolicy, "diffusion": DiffusionPolicy}
"""``policy.type`` -> class."""

CONFIG, WEIGHTS, NORMALIZER = "config.yaml", "model.safetensors", "normalizer.safetensors"


def make_policy(cfg: PolicyConfig) -> ChunkPolicy:
    """A freshly initialized policy of type ``cfg.type`` (weights from ``cfg.seed``)."""
    if cfg.type not in POLICIES:
        raise ValueError(f"unknown policy type '{cfg.type}'; choose from {sorted(POLICIES)}")
    return POLICIES[cfg.type](cfg)


def save(policy: ChunkPolicy, directory: str | Path) -> Path:
    """Write ``policy`` (config, weights, normalizer) into ``directory``; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    norm = {k[len("normalizer."):]: v for k, v in state.items() if k.startswith("normalizer.")}
    weights = {k: v for k, v in state.items() if not k.startswith("normalizer.")}
    meta = {"format": "robolearn.policy/1", "type": policy.cfg.type}
    save_file(weights, str(directory / WEIGHTS), metadata=meta)
    save_file(norm, str(directory / NORMALIZER), metadata=meta)
    save_config(policy.cfg, directory / CONFIG)
    return directory


def resolve(path: str | Path) -> Path:
    """The checkpoint directory named by ``path``: itself, or a run directory's latest checkpoint."""
    path = Path(path)
    if (path / WEIGHTS).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is not None:
        return latest
    if not path.exists():
        raise FileNotFoundError(f"policy checkpoint not found: {path}")
    raise FileNotFoundError(f"{path} is neither a checkpoint (no {WEIGHTS}) "
                            "nor a run directory with checkpoints/step_<N>")


def load(
    path: str | Path,
    scheduler: str | None = None,
    num_inference_steps: int | None = None,
    device: str | torch.device = "cpu",
) -> ChunkPolicy:
    """Load a policy from a checkpoint or run directory, in eval mode.

    ``scheduler`` (``ddpm``, ``ddim``, ``dpmsolver``) and ``num_inference_steps`` override the saved
    sampler of a diffusion policy; they are errors for BC. The weights (stored as CPU tensors) load on
    ``device``, a concrete torch device or its name (``cpu``, ``cuda:0``, ``mps``); a setting such as ``auto`` is
    resolved by the caller (:func:`robolearn.rl.devices.resolve_device`; this layer imports only ``core``).
    """
    ckpt = resolve(path)
    for name in (CONFIG, NORMALIZER):
        if not (ckpt / name).is_file():
            raise FileNotFoundError(f"checkpoint {ckpt} lacks {name}")
    cfg = from_dict(PolicyConfig, yaml.safe_load((ckpt / CONFIG).read_text()), str(ckpt / CONFIG))
    policy = make_policy(cfg)
    state = load_file(str(ckpt / WEIGHTS))
    state |= {f"normalizer.{k}": v for k, v in load_file(str(ckpt / NORMALIZER)).items()}
    try:
        missing, unexpected = policy.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {ckpt}: weights do not match its config.yaml: {err}") from err
    if missing or unexpected:
        raise ValueError(f"checkpoint {ckpt} does not match its config: "
                         f"missing {missing}, unexpected {unexpected}")
    if scheduler is not None or num_inference_steps is not None:
        if not isinstance(policy, DiffusionPolicy):
            raise ValueError(f"scheduler / num_inference_steps apply to diffusion policies, not '{cfg.type}'")
        policy.set_sampler(scheduler, num_inference_steps)
    return policy.to(device).eval()
