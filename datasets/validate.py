"""Content checks of one episode: its columns have the types ``meta/info.json`` promises, its numbers are
finite.

The writer refuses NaN and wrong shapes, but a received or hand-edited file did not go through it. The
reader runs these checks on every episode it loads (so the training loader stops on the first bad step
with the episode, key and step named, instead of training on NaN or failing in a reshape), and deep
``verify`` runs them on every committed episode.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from robolearn.datasets.format import OBS_PREFIX, DatasetInfo, arrow_schema


def _label(column: str) -> str:
    """How a column is named in messages: ``observation 'joint_pos'``, ``action``, ``reward``..."""
    if column.startswith(OBS_PREFIX):
        return f"observation {column.removeprefix(OBS_PREFIX)!r}"
    return column


def _width(arrow_type: pa.DataType) -> str:
    """``6 float32 values per step``, ``a variable-length list``, ``7056 bytes per step``..."""
    if isinstance(arrow_type, pa.FixedSizeListType):
        return f"{arrow_type.list_size} {arrow_type.value_type} values per step"
    if isinstance(arrow_type, pa.FixedSizeBinaryType):
        return f"{arrow_type.byte_width} bytes per step"
    if isinstance(arrow_type, (pa.ListType, pa.LargeListType)):
        return f"a variable-length list of {arrow_type.value_type}"
    if pa.types.is_binary(arrow_type):
        return "one encoded (PNG/JPEG) frame per step"
    return f"type {arrow_type}"


def column_problem(info: DatasetInfo, schema: pa.Schema) -> str | None:
    """None when every column of ``schema`` that ``info`` describes has the type ``info`` implies; else
    one sentence naming the first column that does not (its key, what it holds, what info.json says)."""
    expected = arrow_schema(info)
    for name in schema.names:
        if name not in expected.names:
            continue
        want, have = expected.field(name).type, schema.field(name).type
        if have == want:
            continue
        key = name.removeprefix(OBS_PREFIX)
        feat = info.action if name == "action" else info.observation.get(key)
        said = f"shape {tuple(feat.shape)} {feat.dtype}" if feat is not None else str(want)
        if pa.types.is_binary(want) or pa.types.is_binary(have):
            said += f" stored as {info.images}"
        return f"{_label(name)} holds {_width(have)}, meta/info.json says {said} ({_width(want)})"
    return None


def first_nonfinite(values: np.ndarray) -> tuple[int, int, float] | None:
    """``(step, element, value)`` of the first NaN or inf of ``values`` ``(T, ...)``; None when all are
    finite (or the array is not floating point)."""
    if values.dtype.kind not in "fc" or values.size == 0:
        return None
    flat = values.reshape(values.shape[0], -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return None
    step, element = (int(i) for i in np.argwhere(bad)[0])
    return step, element, float(flat[step, element])


def nonfinite_problem(arrays: Mapping[str, np.ndarray]) -> str | None:
    """None when every array ``{column name: (T, ...)}`` is finite; else a sentence naming the first
    column, step and element holding NaN or inf."""
    for name, values in arrays.items():
        found = first_nonfinite(values)
        if found is not None:
            step, element, value = found
            where = f" element {element}" if values.ndim > 1 and values[0].size > 1 else ""
            return f"{_label(name)} is {value} at step {step}{where}"
    return None


def stats_problem(stats: Mapping[str, Mapping[str, list]]) -> str | None:
    """None when an index record's sufficient statistics are all finite numbers; else a sentence naming the
    first key and statistic that is not (a normalizer built from it would turn every batch into NaN)."""
    for key, per_key in stats.items():
        for name, values in per_key.items():
            try:
                arr = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                return f"index statistics {key}/{name} are not numbers"
            if not np.all(np.isfinite(arr)):
                return f"index statistics {key}/{name} hold NaN or inf"
    return None
