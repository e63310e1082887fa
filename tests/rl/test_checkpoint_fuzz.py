"""Property-based tests of checkpoint loading (issue 25, item 9): truncated, bit-flipped or forged files
(with a manifest rewritten to match, as a forger would) give a state or a ``CheckpointError``, nothing else."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robolearn.core.checkpoints import CheckpointError, write_manifest
from robolearn.rl.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint
from robolearn.rl.replay import ReplayBuffer

FILES = ["state.json", "state.safetensors", "replay_online.npz", "MANIFEST.json"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
               database=None)
"""Derandomized (the same examples on every run, so CI is reproducible) and writing no example database."""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["__tensor__", "__ndarray__", "__tuple__", "__items__", "t0", "t1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["__tensor__", "__ndarray__", "__tuple__", "__items__", "format", "state", "a"]),
        inner, max_size=3),
    max_leaves=10)


def new_buffer() -> ReplayBuffer:
    return ReplayBuffer({"x": [3]}, 2, 8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ckpt")
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    buf = new_buffer()
    obs = {"x": np.ones((4, 3), np.float32)}
    buf.add(obs, np.ones((4, 2), np.float32), np.ones(4, np.float32), np.ones(4, np.float32), obs)
    state = {"learner": {"actor": net.state_dict(), "opt": opt.state_dict()}, "counters": {"env_steps": 4},
             "rng": rng_state(np.random.default_rng(0)), "torch_rng": torch.get_rng_state()}
    return save_checkpoint(run, 4, state, {"online": buf})


def load_mutated(saved: Path, name: str, mutate, reseal: bool) -> None:
    """Copy the checkpoint, apply ``mutate(bytes) -> bytes`` to ``name``, optionally rewrite the manifest to
    match, then resume from it the way refine does."""
    with tempfile.TemporaryDirectory() as tmp:
        step = Path(tmp) / "checkpoints" / saved.name
        shutil.copytree(saved, step)
        (step.parent / "LATEST").write_text(saved.name)
        (step / name).write_bytes(mutate((step / name).read_bytes()))
        if reseal and name != "MANIFEST.json":
            write_manifest(step, [n for n in FILES if n != "MANIFEST.json"])
        found = latest_checkpoint(tmp)
        try:
            load_checkpoint(step, {"online": new_buffer()})
        except CheckpointError as err:
            assert "\n" not in str(err)
            assert found is None or reseal
            return


@FUZZ
@given(name=st.sampled_from(FILES), cut=st.floats(0, 1, exclude_max=True), reseal=st.booleans())
def test_truncated_files_only_raise_checkpoint_error(saved, name, cut, reseal):
    load_mutated(saved, name, lambda data: data[: int(len(data) * cut)], reseal)


@FUZZ
@given(name=st.sampled_from(FILES), flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                                             st.integers(1, 255)), min_size=1, max_size=4),
       reseal=st.booleans())
def test_flipped_bytes_only_raise_checkpoint_error(saved, name, flips, reseal):
    def mutate(data: bytes) -> bytes:
        out = bytearray(data)
        for where, xor in flips:
            out[int(len(out) * where)] ^= xor
        return bytes(out)

    load_mutated(saved, name, mutate, reseal)


@FUZZ
@given(doc=json_values)
def test_forged_state_json_only_raises_checkpoint_error(saved, doc):
    load_mutated(saved, "state.json", lambda _: json.dumps({"format": 2, "state": doc}).encode(), reseal=True)


@FUZZ
@given(data=st.binary(max_size=200), name=st.sampled_from(FILES))
def test_arbitrary_bytes_only_raise_checkpoint_error(saved, data, name):
    load_mutated(saved, name, lambda _: data, reseal=True)
