"""Training state as tensors plus plain data: a nested structure <-> a safetensors file and a JSON file.

Nothing here unpickles. :func:`encode` walks a nested structure of dicts, lists, tuples, tensors, numpy
arrays and JSON scalars; every tensor (and numpy array) goes into a flat ``{name: tensor}`` dict that
:func:`safetensors.torch.save_file` writes, and the structure goes to JSON with each tensor replaced by a
reference. Optimizer state dicts (integer keys, tuple ``betas``), numpy ``bit_generator.state`` dicts
(Python ints of any size) and torch RNG states (uint8 tensors) all round-trip.

JSON markers (a dict with one of these keys is a marker, never user data):

- ``{"__tensor__": name}``: a torch tensor stored under ``name``
- ``{"__ndarray__": name}``: a numpy array stored (as a tensor) under ``name``
- ``{"__tuple__": [...]}``: a tuple
- ``{"__items__": [[key, value], ...]}``: a dict whose keys are not all strings (or look like markers)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

TENSOR, NDARRAY, TUPLE, ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"
MARKERS = (TENSOR, NDARRAY, TUPLE, ITEMS)
SCALARS = (str, int, float, bool, type(None))


class StateFormatError(ValueError):
    """A state file whose JSON structure or tensor references do not decode."""


def encode(value: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """``(structure, tensors)``: a JSON-ready structure and the tensors it references (contiguous CPU copies).

    Raises TypeError for a value that is neither a container, a tensor, an array nor a JSON scalar.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = v.detach().to("cpu").contiguous().clone()
            return {TENSOR: name}
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError("an object array cannot be stored without pickle")
            name = f"t{len(tensors)}"
            tensors[name] = torch.from_numpy(np.ascontiguousarray(v).copy())
            return {NDARRAY: name}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, SCALARS):
            return v
        if isinstance(v, tuple):
            return {TUPLE: [walk(x) for x in v]}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, Mapping):
            if all(isinstance(k, str) and k not in MARKERS for k in v):
                return {k: walk(x) for k, x in v.items()}
            if not all(isinstance(k, SCALARS) for k in v):
                raise TypeError(f"dict keys must be JSON scalars, got {[type(k).__name__ for k in v]}")
            return {ITEMS: [[k, walk(x)] for k, x in v.items()]}
        raise TypeError(f"cannot store a {type(v).__name__} in a checkpoint (tensors, arrays, plain data only)")

    return walk(value), tensors


def decode(structure: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`; raises :class:`StateFormatError` on a malformed structure."""

    def tensor(name: Any) -> torch.Tensor:
        if not isinstance(name, str) or name not in tensors:
            raise StateFormatError(f"reference to a tensor {name!r} that the tensor file does not hold")
        return tensors[name]

    def walk(v: Any) -> Any:
        if isinstance(v, list):
            return [walk(x) for x in v]
        if not isinstance(v, dict):
            if not isinstance(v, SCALARS):
                raise StateFormatError(f"unexpected {type(v).__name__} in the state structure")
            return v
        marker = [k for k in v if k in MARKERS]
        if not marker:
            return {k: walk(x) for k, x in v.items()}
        if len(v) != 1:
            raise StateFormatError(f"a marker dict with extra keys: {sorted(v)}")
        key, inner = marker[0], v[marker[0]]
        if key == TENSOR:
            return tensor(inner)
        if key == NDARRAY:
            return tensor(inner).numpy()
        if not isinstance(inner, list):
            raise StateFormatError(f"{key} must hold a list, got {type(inner).__name__}")
        if key == TUPLE:
            return tuple(walk(x) for x in inner)
        pairs = [p for p in inner if isinstance(p, list) and len(p) == 2 and isinstance(p[0], SCALARS)]
        if len(pairs) != len(inner):
            raise StateFormatError(f"{ITEMS} must hold [key, value] pairs with scalar keys")
        return {k: walk(x) for k, x in pairs}

    return walk(structure)
