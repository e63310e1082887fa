"""A refined-policy directory: ``refined.yaml`` (format, method, base spec, actor shapes, the method's
params) and ``actor.pt`` (actor weights). Written by :func:`save_refined`; read back by
:func:`read_refined` and :func:`load_actor` (the whole policy is rebuilt by
:func:`robolearn.policy_factory.load_policy`, which loads the base and asks the method for the rest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from robolearn.refine.layout import ACTOR_FILE, REFINED_FILE
from robolearn.rl.devices import resolve_device
from robolearn.rl.networks import Actor

FORMAT = "robolearn.refined/1"


@dataclass
class RefinedMeta:
    """The contents of ``refined.yaml``."""

    method: str
    """A key of :data:`robolearn.refine.methods.METHODS`."""
    base: str
    """The base policy's spec (``expert:noise=X`` or a directory)."""
    env_id: str
    obs_shapes: dict[str, list[int]]
    """The actor's observation keys and shapes."""
    action_dim: int
    stochastic: bool
    hidden: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    """The method's parameters as saved by ``MethodParams.to_dict`` (loaded by ``MethodParams.from_dict``)."""
    format: str = FORMAT


def save_refined(directory: str | Path, method: str, base_spec: str, env_id: str, actor: Actor,
                 obs_shapes: Mapping[str, Any], hidden: list[int], params: Mapping[str, Any]) -> Path:
    """Write a refined policy (base spec + actor weights + ``params``, a method's ``to_dict()``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "method": method, "base": base_spec, "env_id": env_id,
            "obs_shapes": {k: list(v) for k, v in obs_shapes.items()}, "action_dim": actor.action_dim,
            "stochastic": actor.stochastic, "hidden": list(hidden), "params": dict(params)}
    tmp = directory / (ACTOR_FILE + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in actor.state_dict().items()}, tmp)  # CPU tensors: loads anywhere
    tmp.replace(directory / ACTOR_FILE)
    (directory / REFINED_FILE).write_text(yaml.safe_dump(meta, sort_keys=False))
    return directory


def read_refined(directory: str | Path) -> RefinedMeta:
    """The metadata of a refined-policy directory; a ValueError for anything else."""
    path = Path(directory) / REFINED_FILE
    meta = yaml.safe_load(path.read_text())
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a robolearn refined policy")
    return RefinedMeta(method=meta["method"], base=meta["base"], env_id=meta["env_id"],
                       obs_shapes=meta["obs_shapes"], action_dim=int(meta["action_dim"]),
                       stochastic=bool(meta["stochastic"]), hidden=list(meta["hidden"]),
                       params=dict(meta.get("params") or {}))


def load_actor(directory: str | Path, meta: RefinedMeta, device: str | torch.device = "cpu") -> Actor:
    """The saved actor, in eval mode, on ``device`` (a device setting such as ``auto`` or a ``torch.device``;
    the weights load there whatever device they were trained on)."""
    where = resolve_device(device)
    actor = Actor(meta.obs_shapes, meta.action_dim, meta.hidden, meta.stochastic).to(where)
    actor.load_state_dict(torch.load(Path(directory) / ACTOR_FILE, map_location=where, weights_only=True))
    actor.eval()
    return actor
