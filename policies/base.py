"""What BC and the diffusion policy share: input checks, observation history, normalization, ``act``.

A :class:`ChunkPolicy` implements :class:`robolearn.core.protocols.Policy`: ``act(obs, noise)`` takes a batch
of observations in physical units (``{key: (B, *shape)}`` numpy), appends it to the policy's own history
of the last ``To`` observations per batch row, and returns the first ``Ta`` actions of the predicted
chunk, ``(B, Ta, Da)`` float32 in physical units. A runner that executes the chunk open-loop should pass
the intermediate observations to :meth:`ChunkPolicy.observe`, so that the history holds consecutive
control steps as in training; otherwise its entries are ``Ta`` steps apart.

Subclasses provide ``predict_normalized(obs, noise)`` and ``loss_normalized(obs, action, mask)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from robolearn.policies.configuration import PolicyConfig, is_image_key
from robolearn.policies.encoders import ObservationEncoder
from robolearn.policies.normalizer import Normalizer, StatsDict

Batch = Mapping[str, object]
"""A training batch: ``{"obs": {key: (B, To, *shape)}, "action": (B, Tp, Da), "action_is_pad": (B, Tp)}``."""


class ChunkPolicy(nn.Module):
    """Base class of policies that predict a chunk of ``Tp`` actions from ``To`` observations."""

    def __init__(self, cfg: PolicyConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.keys = cfg.keys()
        self.shapes = {k: tuple(cfg.obs_shapes[k]) for k in self.keys}
        state_keys = [k for k in self.keys if not is_image_key(k)]
        modes = {k: cfg.state_norm for k in state_keys} | {"action": cfg.action_norm}
        shapes = {k: self.shapes[k] for k in state_keys} | {"action": (cfg.action_dim,)}
        self.normalizer = Normalizer(shapes, modes)
        self.encoder = ObservationEncoder(cfg.encoder, self.shapes, cfg.n_obs_steps)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._history: dict[str, torch.Tensor] | None = None
        self._fresh: torch.Tensor | None = None
        self._ahead = False

    # ----------------------------------------------------------------- protocol
    @property
    def noise_shape(self) -> tuple[int, ...] | None:
        """``(Tp, Da)`` for generative policies; None here."""
        return None

    def predict_ahead(self, enabled: bool = True) -> int:
        """Make ``act`` return the whole predicted chunk, ``(B, Tp, Da)``, not only its first ``Ta`` actions:
        for a caller that executes ``Ta`` of them and keeps the rest as a reserve for when its next chunk is
        late (the ROS policy node). Returns ``Ta``, the actions to execute per chunk."""
        self._ahead = bool(enabled)
        return self.cfg.n_action_steps

    @property
    def device(self) -> torch.device:
        return self.normalizer.fitted.device

    def set_stats(self, stats: StatsDict) -> None:
        """Fit the normalizer from dataset statistics ``{key: {"min", "max", "mean", "std"}}``."""
        self.normalizer.set_stats(stats)

    @torch.inference_mode()
    def reset(self, env_ids: Sequence[int] | np.ndarray | None = None) -> None:
        """Forget the observation history of rows ``env_ids`` (all rows when None)."""
        if env_ids is None or self._fresh is None:
            self._history, self._fresh = None, None
            return
        ids = torch.as_tensor(np.asarray(env_ids, dtype=np.int64).reshape(-1))
        if ids.numel() and (ids.min() < 0 or ids.max() >= self._fresh.shape[0]):
            raise IndexError(f"reset: env_ids {ids.tolist()} out of range for batch {self._fresh.shape[0]}")
        self._fresh[ids] = True

    @torch.inference_mode()
    def observe(self, obs: Mapping[str, np.ndarray]) -> None:
        """Append one observation ``{key: (B, *shape)}`` to the history without predicting."""
        frame = self._check_obs(obs)
        b = next(iter(frame.values())).shape[0]
        if self._history is None or self._fresh is None or self._fresh.shape[0] != b:
            to = self.cfg.n_obs_steps
            self._history = {k: v[:, None].repeat_interleave(to, 1) for k, v in frame.items()}
            self._fresh = torch.zeros(b, dtype=torch.bool)
            return
        fresh = self._fresh.to(self.device)
        for k, v in frame.items():
            rolled = torch.cat([self._history[k][:, 1:], v[:, None]], dim=1)
            filled = v[:, None].expand_as(rolled)
            mask = fresh.reshape(-1, *([1] * (rolled.dim() - 1)))
            self._history[k] = torch.where(mask, filled, rolled)
        self._fresh.zero_()

    @torch.inference_mode()
    def act(self, obs: Mapping[str, np.ndarray], noise: np.ndarray | None = None) -> np.ndarray:
        """Observe ``obs`` and return the next ``Ta`` actions ``(B, Ta, Da)`` float32, physical units."""
        self.observe(obs)
        assert self._history is not None
        b = self._fresh.shape[0] if self._fresh is not None else 0
        noise_t = None if noise is None else self._check_noise(noise, b)
        actions = self.infer(self._history, noise_t)
        return actions.cpu().numpy().astype(np.float32)

    @torch.inference_mode()
    def image_features(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The encoder's features of the current frame of each camera: ``{pixels/<camera>: (B, H, W, 3)}`` uint8
        -> ``(B, n_cameras * image_feature_dim)`` float32 (no augmentation; the history is left as it is). A
        residual actor can read these frozen features instead of learning an image encoder of its own."""
        keys = self.encoder.image_keys
        if not keys:
            raise ValueError("image_features: this policy reads no camera (no pixels/<camera> observation key)")
        frames = {k: torch.from_numpy(np.ascontiguousarray(obs[k])).to(self.device) for k in keys}
        return self.encoder.image_features(frames).float().cpu().numpy()

    def infer(self, history: Mapping[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        """Tensor-level ``act``: history ``{key: (B, To, *shape)}`` physical -> ``(B, Ta, Da)`` physical
        (``(B, Tp, Da)`` after :meth:`predict_ahead`)."""
        chunk = self.predict_normalized(self.normalize_obs(history), noise)
        return self.normalizer.unnormalize("action", chunk if self._ahead else chunk[:, : self.cfg.n_action_steps])

    # ----------------------------------------------------------------- training
    def normalize_obs(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """State keys normalized (float32); images passed through unchanged."""
        norm = self.normalizer.normalize
        return {k: obs[k] if is_image_key(k) else norm(k, obs[k].float()) for k in self.keys}

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of one batch (physical units, see :data:`Batch`) and scalar metrics to log."""
        obs, action, pad = self._check_batch(batch)
        mask = ~pad if self.cfg.mask_padded_actions else torch.ones_like(pad)
        norm_action = self.normalizer.normalize("action", action)
        return self.loss_normalized(self.normalize_obs(obs), norm_action, mask)

    def predict_normalized(self, obs: Mapping[str, torch.Tensor], noise: torch.Tensor | None) -> torch.Tensor:
        """Normalized observation history -> normalized chunk ``(B, Tp, Da)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict_normalized")

    def loss_normalized(
        self, obs: Mapping[str, torch.Tensor], action: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss from normalized obs, normalized actions ``(B, Tp, Da)`` and a valid mask ``(B, Tp)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss_normalized")

    # ----------------------------------------------------------------- checks
    def _check_obs(self, obs: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        if not isinstance(obs, Mapping):
            raise TypeError(f"act: obs must be a dict of arrays, got {type(obs).__name__}")
        out, batch = {}, None
        for key in self.keys:
            if key not in obs:
                raise KeyError(f"act: observation '{key}' missing; got keys {sorted(obs)}, need {self.keys}")
            x = np.asarray(obs[key])
            want = self.shapes[key]
            if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
                dims = ", ".join(map(str, want))
                raise ValueError(f"act: observation '{key}' has shape {x.shape}, expected (B, {dims})")
            if batch is not None and x.shape[0] != batch:
                raise ValueError(f"act: observation '{key}' has batch {x.shape[0]}, other keys have {batch}")
            batch = x.shape[0]
            if is_image_key(key):
                if x.dtype != np.uint8:
                    raise ValueError(f"act: image '{key}' must be uint8, got {x.dtype}")
                out[key] = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            else:
                if not np.isfinite(x).all():
                    raise ValueError(f"act: observation '{key}' contains NaN or inf")
                out[key] = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if not self.normalizer.fitted:
            raise RuntimeError("act: the policy's normalizer has no statistics; "
                               "call set_stats() or load a checkpoint")
        return out

    def _check_noise(self, noise: np.ndarray | torch.Tensor, batch: int) -> torch.Tensor:
        if self.noise_shape is None:
            return torch.as_tensor(np.asarray(noise, dtype=np.float32))  # ignored by deterministic policies
        t = torch.as_tensor(np.asarray(noise, dtype=np.float32), device=self.device)
        want = (batch, *self.noise_shape)
        if tuple(t.shape) != want:
            raise ValueError(f"act: noise has shape {tuple(t.shape)}, expected (B, Tp, Da) = {want}")
        if not torch.isfinite(t).all():
            raise ValueError("act: noise contains NaN or inf")
        return t

    def _check_batch(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        for name in ("obs", "action", "action_is_pad"):
            if name not in batch:
                raise KeyError(f"training batch lacks '{name}'; got {sorted(batch)}")
        obs_in, action, pad = batch["obs"], batch["action"], batch["action_is_pad"]
        cfg = self.cfg
        want_a = (cfg.horizon, cfg.action_dim)
        if not isinstance(action, torch.Tensor) or action.dim() != 3 or tuple(action.shape[1:]) != want_a:
            raise ValueError(f"batch 'action' must be a (B, Tp, Da) = (B, {want_a[0]}, {want_a[1]}) tensor, "
                             f"got {getattr(action, 'shape', type(action))}")
        b = action.shape[0]
        if not isinstance(pad, torch.Tensor) or tuple(pad.shape) != (b, cfg.horizon):
            raise ValueError(f"batch 'action_is_pad' must be a (B, Tp) = ({b}, {cfg.horizon}) tensor")
        obs = {}
        for key in self.keys:
            if key not in obs_in:
                raise KeyError(f"batch obs lacks '{key}'; got {sorted(obs_in)}")
            x = obs_in[key]
            want = (b, cfg.n_obs_steps, *self.shapes[key])
            if tuple(x.shape) != want:
                raise ValueError(f"batch obs '{key}' has shape {tuple(x.shape)}, "
                                 f"expected (B, To, *shape) = {want}")
            obs[key] = x.to(self.device)
        return obs, action.to(self.device, torch.float32), pad.to(self.device, torch.bool)
