"""batch_infos: the column-wise info batching returns what gymnasium's ``_add_info`` builds env by env."""

from __future__ import annotations

import numpy as np
from gymnasium.vector import SyncVectorEnv
from hypothesis import given, settings
from hypothesis import strategies as st

from robolearn.sim.vector import make_vec_env
from robolearn.sim.vector_base import batch_infos

QUAD = "robolearn/QuadHover-v0"
SCALARS = st.one_of(st.booleans(), st.integers(-5, 5), st.floats(-1e3, 1e3), st.just(np.float32(0.5)))
VALUES = st.one_of(SCALARS, st.just(np.arange(3.0)), st.none(), st.text(max_size=3),
                   st.dictionaries(st.sampled_from(["a", "b"]), SCALARS, max_size=2))


def gymnasium_batch(infos: list[dict]) -> dict:
    """gymnasium's own batching: ``VectorEnv._add_info`` once per env."""
    vec = SyncVectorEnv.__new__(SyncVectorEnv)
    vec.num_envs = len(infos)
    out: dict = {}
    for i, info in enumerate(infos):
        out = vec._add_info(out, info, i)
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same(a[key], b[key])
        else:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert a[key].tolist() == b[key].tolist(), key


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["x", "y", "reward/z", "info"]), VALUES, max_size=4),
                min_size=1, max_size=4))
def test_batch_infos_matches_gymnasium(infos):
    batched = batch_infos(infos)
    if batched is not None:  # None: the caller falls back to gymnasium's own batching
        assert_same(batched, gymnasium_batch(infos))


def test_uniform_infos_take_the_column_path():
    infos = [{"is_success": i == 1, "count": i, "reward/a": 0.5 * i, "push": np.full(3, i, np.float32),
              "dynamics": {"mass": 0.03 + i}} for i in range(3)]
    batched = batch_infos(infos)
    assert batched is not None
    assert_same(batched, gymnasium_batch(infos))


def test_quadrotor_threads_infos_equal_sync():
    """Over resets and crashes, the threaded backend's infos equal SyncVectorEnv's, key for key."""
    runs = []
    for backend in ("threads", "sync"):
        vec = make_vec_env(QUAD, 3, seed=4, backend=backend, num_threads=2 if backend == "threads" else None,
                           max_episode_steps=15)
        _, reset_info = vec.reset()
        rng = np.random.default_rng(0)
        steps = [reset_info]
        for _ in range(40):
            action = rng.uniform(vec.single_action_space.low, vec.single_action_space.high, (3, 4))
            *_, info = vec.step(action)
            steps.append(info)
        runs.append(steps)
        vec.close()
    for a, b in zip(*runs, strict=True):
        a, b = dict(a), dict(b)
        finals = [a.pop("final_obs", None), b.pop("final_obs", None)]
        assert (finals[0] is None) == (finals[1] is None)
        assert_same(a, b)
