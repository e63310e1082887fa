"""A real two-node Ray cluster on this machine: a head and a second node started with ``ray start`` on 127.0.0.1
(one CPU each), joined by address; the evaluation's blocks run on both nodes and give the serial outcomes."""

from __future__ import annotations

import pytest
import ray_helpers

from robolearn.dist.cluster import connect
from robolearn.dist.evaluate import merge, run_blocks, split
from robolearn.evaluate import evaluate
from robolearn.policy_factory import load_policy

ENV = "robolearn/PandaLift-v0"


@pytest.mark.slow
def test_evaluation_blocks_run_on_both_nodes(two_nodes):
    with connect(two_nodes) as ray:
        ray_helpers.wait_for_nodes(ray, 2)
        assert {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} == {"127.0.0.1"}
        parts = run_blocks("expert", ENV, split(4, seed=300, blocks=2), eval_kwargs={"num_envs": 2}, progress=False)
        assert {p.node_id for p in parts} == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len({p.node_id for p in parts}) == 2
    assert not ray.is_initialized()  # the connection made by connect() is closed
    result = merge(ENV, parts)
    reference = evaluate(load_policy("expert", ENV, seed=300), ENV, 4, seed=300, num_envs=2, progress=False)
    assert result.seeds == [300, 301, 302, 303]
    assert sorted(zip(reference.seeds, reference.successes, reference.lengths, strict=True)) == list(
        zip(result.seeds, result.successes, result.lengths, strict=True))
