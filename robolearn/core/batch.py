"""The batch size of a dict observation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def batch_size(obs: Mapping[str, Any]) -> int:
    """``B`` of a batched observation ``{key: (B, ...)}`` (the length of its first value)."""
    return len(next(iter(obs.values())))
