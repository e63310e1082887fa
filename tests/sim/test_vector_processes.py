"""backend="processes" and the per-task default backend: same results as the other backends, clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robolearn.sim.registry import TASKS
from robolearn.sim.vector import MujocoVectorEnv, default_backend, make_vec_env
from robolearn.sim.vector_processes import ProcessVectorEnv, WorkerError, chunk_bounds

HOVER, LIFT = "robolearn/QuadHover-v0", "robolearn/PandaLift-v0"


def _same(a, b, path: str = "") -> None:
    """``a`` and ``b`` hold equal values of equal types (dicts in the same key order), recursively."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        _same(list(a), list(b), path)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


def _trace(backend: str, steps: int = 12) -> list:
    vec = make_vec_env(HOVER, 3, seed=7, backend=backend, num_threads=2, max_episode_steps=5)
    try:
        space = vec.single_action_space
        rng = np.random.default_rng(0)
        trace = list(vec.reset())
        for _ in range(steps):
            trace += list(vec.step(rng.uniform(space.low, space.high, (3, *space.shape))))
        mask = np.array([True, False, True])
        trace += list(vec.reset(seed=50, options={"reset_mask": mask}))
        trace += list(vec.step(rng.uniform(space.low, space.high, (3, *space.shape))))
        if backend != "sync":
            trace.append(vec.episode_steps.tolist())
        return trace
    finally:
        vec.close()


def test_processes_match_threads_and_sync_exactly():
    """Observations, rewards, flags and infos (final_obs/final_info of autoresets too) are identical."""
    reference, threads, processes = _trace("sync"), _trace("threads"), _trace("processes")
    _same(threads[:-1], reference)
    _same(processes, threads)


def test_call_get_attr_set_attr_render_and_action_errors():
    vec = make_vec_env(HOVER, 3, seed=0, backend="processes", num_threads=2,
                       env_kwargs={"render_mode": "rgb_array", "width": 32, "height": 24})
    try:
        assert isinstance(vec, ProcessVectorEnv) and vec.num_workers == 2
        vec.reset()
        assert vec.get_attr("n_substeps") == (10, 10, 10)
        vec.set_attr("terminate_on_success", [False, True, False])
        assert vec.get_attr("terminate_on_success") == (False, True, False)
        with pytest.raises(ValueError, match="got 2 values for 3 envs"):
            vec.set_attr("terminate_on_success", [True, True])
        with pytest.raises(WorkerError, match="no_such_method"):
            vec.call("no_such_method")
        bad = np.zeros((3, 4), np.float32)
        bad[1, 2] = np.nan
        with pytest.raises(Exception, match=r"envs \[1\] contain NaN or inf"):
            vec.step(bad)
        try:
            frames = vec.render()
        except WorkerError as err:  # no offscreen GL on this machine: the env's own renderer error
            pytest.skip(f"offscreen rendering unavailable: {err}")
        assert [f.shape for f in frames] == [(24, 32, 3)] * 3
    finally:
        vec.close()


def test_worker_build_error_names_the_cause():
    with pytest.raises(WorkerError, match="bogus_key"):
        make_vec_env(HOVER, 2, backend="processes", env_kwargs={"bogus_key": 1})


def test_default_backend_per_task_and_explicit_override(monkeypatch):
    monkeypatch.setattr("robolearn.sim.vector.usable_cpus", lambda: 2)
    monkeypatch.setitem(TASKS, HOVER, dataclasses.replace(TASKS[HOVER], vec_backend="processes"))
    assert default_backend(HOVER, 8) == "processes"
    assert default_backend(LIFT, 8) == TASKS[LIFT].vec_backend == "threads"
    assert default_backend(HOVER, 1) == "threads"  # one env runs inline
    monkeypatch.setattr("robolearn.sim.vector.usable_cpus", lambda: 1)
    assert default_backend(HOVER, 8) == "threads"
    vec = make_vec_env(HOVER, 2, backend="threads")  # an explicit backend wins over the task's default
    assert isinstance(vec, MujocoVectorEnv)
    vec.close()


def test_chunk_bounds_cover_every_env_once():
    assert chunk_bounds(5, 2) == [(0, 3), (3, 5)]
    assert chunk_bounds(3, 3) == [(0, 1), (1, 2), (2, 3)]


def test_pixel_envs_default_to_worker_processes_with_the_same_frames(monkeypatch):
    """Envs with cameras render in worker processes by default (on 2+ CPUs), frame for frame as threads do."""
    monkeypatch.setattr("robolearn.sim.vector.usable_cpus", lambda: 2)
    pixels = {"cameras": ["front", "wrist"], "width": 24, "height": 24}
    assert default_backend(LIFT, 2, pixels=True) == "processes" and default_backend(LIFT, 1, pixels=True) == "threads"
    traces = []
    for backend in (None, "threads"):
        vec = make_vec_env(LIFT, 2, seed=3, env_kwargs={"pixels": pixels}, backend=backend)
        try:
            assert isinstance(vec, ProcessVectorEnv if backend is None else MujocoVectorEnv)
            actions = np.random.default_rng(0).uniform(-1, 1, (3, *vec.action_space.shape)).astype(np.float32)
            trace = [vec.reset()[0]] + [vec.step(a)[0] for a in actions]
        finally:
            vec.close()
        assert trace[-1]["pixels/wrist"].shape == (2, 24, 24, 3) and trace[-1]["pixels/front"].std() > 0
        traces.append(trace)
    _same(traces[0], traces[1])
