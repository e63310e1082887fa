"""Fuzz (hypothesis) the dataset reader with received files mutated at random: truncated or flipped bytes in
an episode file, the index or ``meta/info.json``, or arbitrary text in their place. Opening, reading every
episode, the statistics and ``verify`` either work or raise the project's own :class:`DatasetError` (with a
message); nothing else escapes, and no value read back is non-finite."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robolearn.datasets.format import DatasetError
from robolearn.datasets.reader import EpisodeDataset
from robolearn.datasets.repair import verify
from tests.datasets.dataset_helpers import write_dataset

FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TARGETS = ["data/episode_000000.parquet", "meta/episodes.jsonl", "meta/info.json"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    write_dataset(root, [5, 7])
    return root


def _mutate(path: Path, kind: str, where: float, data: bytes) -> None:
    raw = path.read_bytes()
    at = int(where * max(len(raw) - 1, 0))
    if kind == "truncate":
        path.write_bytes(raw[:at])
    elif kind == "flip":
        path.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:] if raw else b"\xff")
    elif kind == "splice":
        path.write_bytes(raw[:at] + data + raw[at + len(data):])
    else:  # replace
        path.write_bytes(data)


def _read_everything(root: Path) -> None:
    ds = EpisodeDataset(root)
    for episode in ds:
        for name, value in {**episode.obs, "action": episode.action}.items():
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                assert np.isfinite(value).all(), name
    ds.stats()
    verify(root, deep=True)


@FUZZ
@given(target=st.sampled_from(TARGETS), kind=st.sampled_from(["truncate", "flip", "splice", "replace"]),
       where=st.floats(0, 1), data=st.binary(min_size=1, max_size=64))
def test_mutated_files_raise_only_dataset_errors(pristine, tmp_path, target, kind, where, data):
    root = Path(tempfile.mkdtemp(dir=tmp_path)) / "ds"
    shutil.copytree(pristine, root)
    _mutate(root / target, kind, where, data)
    try:
        _read_everything(root)
    except DatasetError as err:
        assert str(err).strip() and "\n" not in str(err).strip()
