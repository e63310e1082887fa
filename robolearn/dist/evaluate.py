"""Evaluation episodes fanned out over Ray: contiguous blocks of seeds, one Ray task per block.

:func:`evaluate_ray` runs the episodes of :func:`robolearn.evaluate.evaluate` (episode ``i`` reset with seed
``seed + i``) as blocks of consecutive seeds, each a Ray task (one CPU, one torch thread) that rebuilds the
policy from its spec with :func:`robolearn.policy_factory.load_policy` (a named policy or a policy directory:
no live torch module crosses the wire) and evaluates its block. A policy whose action for an env depends
only on that env's observations (the scripted expert, BC, a refined actor with deterministic noise) gives
each episode the outcome of a serial run with the same seeds; a policy that samples from a generator draws
from one generator per block (seeded with the block's first episode seed), so its samples differ from a
serial run's as they would with another ``num_envs``. The merged result lists the episodes in seed order.

Tasks are spread over the cluster's nodes (``SPREAD``). A policy directory is passed by its absolute path,
so the nodes need it at the same path (a shared file system or a copy); the videos come back as MP4 bytes
and are written by the caller.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robolearn.dist.cluster import connect, node_id, run_job
from robolearn.evaluate import EvalResult


@dataclass(frozen=True)
class Block:
    """Episodes ``first .. first + count - 1`` of an evaluation, reset with seeds ``seed + first + k``."""

    first: int
    count: int
    seed: int
    videos: int = 0
    """How many of the block's first episodes to record (the evaluation's first ``videos`` episodes)."""

    @property
    def first_seed(self) -> int:
        return self.seed + self.first


@dataclass
class BlockResult:
    """One block's outcomes, where it ran, and its videos (reset seed -> MP4 bytes)."""

    result: EvalResult
    node_id: str
    videos: dict[int, bytes] = field(default_factory=dict)


def split(episodes: int, seed: int, blocks: int, videos: int = 0) -> list[Block]:
    """``episodes`` episodes as ``blocks`` blocks of consecutive seeds, sizes differing by at most one."""
    if episodes < 1 or blocks < 1:
        raise ValueError(f"episodes and blocks must be >= 1, got {episodes} and {blocks}")
    blocks = min(blocks, episodes)
    size, extra = divmod(episodes, blocks)
    out, first = [], 0
    for b in range(blocks):
        count = size + (b < extra)
        out.append(Block(first, count, seed, max(0, min(videos - first, count))))
        first += count
    return out


def policy_spec(spec: str | Path) -> str:
    """``spec`` as the workers need it: a named policy as it is (even where a folder of that name exists, as
    :func:`~robolearn.policy_factory.load_policy` reads it), a directory as an absolute path."""
    from robolearn.policy_factory import NAMED_POLICIES

    path = Path(spec)
    if str(spec).partition(":")[0] in NAMED_POLICIES or not path.exists():
        return str(spec)
    return str(path.resolve())


def run_block(spec: str, env_id: str, block: Block, load_kwargs: dict[str, Any] | None = None,
              eval_kwargs: dict[str, Any] | None = None) -> BlockResult:
    """Evaluate one block in this process: the policy built from ``spec`` (seeded with the block's first
    episode seed), :func:`robolearn.evaluate.evaluate` over the block's seeds, its videos read back as bytes.
    The body of a Ray task; a plain function, so it runs without Ray too."""
    from robolearn.evaluate import evaluate
    from robolearn.policy_factory import load_policy

    if not Path(spec).exists() and "/" in spec:
        raise FileNotFoundError(f"policy {spec} is not on Ray node {_node()}: the cluster's nodes need the "
                                "policy directory at the same path (a shared file system or a copy)")
    policy = load_policy(spec, env_id, seed=block.first_seed, **(load_kwargs or {}))
    with tempfile.TemporaryDirectory(prefix="robolearn-eval-") as tmp:
        result = evaluate(policy, env_id, episodes=block.count, seed=block.first_seed, progress=False,
                          video_dir=tmp if block.videos else None, videos=block.videos, **(eval_kwargs or {}))
        recorded = [s for s in result.seeds if s < block.first_seed + block.videos]  # in the order of .videos
        videos = {s: Path(v).read_bytes() for s, v in zip(recorded, result.videos, strict=True)}
    result.videos = []
    return BlockResult(result, _node(), videos)


def _node() -> str:
    """This Ray node's id, or ``local`` outside Ray."""
    ray = sys.modules.get("ray")
    return node_id() if ray is not None and ray.is_initialized() else "local"


def merge(env_id: str, parts: list[BlockResult], video_dir: str | Path | None = None) -> EvalResult:
    """One :class:`EvalResult` of the blocks' episodes in seed order; videos written under ``video_dir`` as
    ``episode_<i>.mp4`` (``i``: the episode's index, its seed minus the evaluation's seed)."""
    rows = sorted((s, ok, ret, n) for p in parts for s, ok, ret, n in
                  zip(p.result.seeds, p.result.successes, p.result.returns, p.result.lengths, strict=True))
    out = EvalResult(env_id)
    for s, ok, ret, n in rows:
        out.seeds.append(s)
        out.successes.append(ok)
        out.returns.append(ret)
        out.lengths.append(n)
    videos = {s: data for p in parts for s, data in p.videos.items()}
    if videos and video_dir is not None:
        Path(video_dir).mkdir(parents=True, exist_ok=True)
        first = rows[0][0]
        for s in sorted(videos):
            path = Path(video_dir) / f"episode_{s - first:03d}.mp4"
            path.write_bytes(videos[s])
            out.videos.append(path)
    return out


def run_blocks(spec: str | Path, env_id: str, blocks: list[Block], load_kwargs: dict[str, Any] | None = None,
               eval_kwargs: dict[str, Any] | None = None, progress: bool = True) -> list[BlockResult]:
    """Run ``blocks`` as Ray tasks on the connected cluster (one CPU, one torch thread each, spread over the
    nodes); results in the order of ``blocks``."""
    import ray
    from tqdm import tqdm

    task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(run_job)
    spec = policy_spec(spec)
    refs = [task.remote(_run_block_job, (spec, env_id, b, load_kwargs, eval_kwargs), 1) for b in blocks]
    with tqdm(total=sum(b.count for b in blocks), disable=not progress, desc=f"eval {env_id} (ray)") as bar:
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(blocks[refs.index(done[0])].count)
    return ray.get(refs)


def _run_block_job(job: tuple[str, str, Block, dict[str, Any] | None, dict[str, Any] | None]) -> BlockResult:
    return run_block(*job)


def evaluate_ray(spec: str | Path, env_id: str, episodes: int = 100, seed: int = 0, address: str | None = "auto",
                 tasks: int | None = None, video_dir: str | Path | None = None, videos: int = 0,
                 progress: bool = True, load_kwargs: dict[str, Any] | None = None,
                 **eval_kwargs: Any) -> EvalResult:
    """:func:`robolearn.evaluate.evaluate` of the policy ``spec`` with its episodes split over Ray tasks.

    ``address``: ``auto`` or a cluster address (:func:`robolearn.dist.cluster.connect`); ``tasks``: how many
    blocks (default: the cluster's CPUs); ``load_kwargs`` go to :func:`robolearn.policy_factory.load_policy`
    (``scheduler``, ``num_inference_steps``), ``eval_kwargs`` to ``evaluate`` (``num_envs``, ``dynamics``,
    ``task``, ``batched``). Returns the episodes in seed order."""
    with connect(address) as ray:
        n = tasks or max(1, int(ray.cluster_resources().get("CPU", 1)))
        blocks = split(episodes, seed, n, videos if video_dir is not None else 0)
        parts = run_blocks(spec, env_id, blocks, load_kwargs, eval_kwargs, progress)
    return merge(env_id, parts, video_dir)
