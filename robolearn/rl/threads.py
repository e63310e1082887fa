"""The torch thread policy of every command: one thread per process unless a command asks for more.

Processes on a shared machine (several engineers, the pipeline's ROS nodes, MuJoCo's env threads) share
the cores; torch's default of one intra-op thread per core then makes each process's small matmuls wait
for cores the others hold. Every entry point (``robolearn <subcommand>``, ``run_pipeline``, the bench
scripts) calls :func:`set_torch_threads` once, before any torch work, so the count is always chosen on
purpose; ``bench/thread_policy.py`` measures both settings, alone and beside a competing process.
"""

from __future__ import annotations

DEFAULT_THREADS = 1
"""Torch intra-op threads of a command that does not say otherwise."""


def set_torch_threads(threads: int = DEFAULT_THREADS) -> int:
    """Set torch's intra-op thread count to ``threads`` (0: keep torch's default, one per core) and return
    the count now in effect. torch is imported here, not at module level, so that importing this module
    stays cheap."""
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: torch's default, one per core), got {threads}")
    import torch

    if threads > 0:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()
