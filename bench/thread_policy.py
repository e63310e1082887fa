"""Torch threads on a shared machine: one per process against torch's default, alone and beside a neighbour.

The workload is what the refinement loop runs between env steps: a TD3-style update of LayerNorm MLPs
(critic and actor 256x256, batch 256: forward, backward, Adam step) and a batch-8 inference of a
diffusion-sized MLP (3 blocks of 256, 10 denoising passes). Each round times both thread settings back to
back (interleaved), first with the machine as it is, then while a competing process runs the same
workload at torch's default threads (what a second command, or an engineer's job, does on a shared
machine). Prints per-setting medians and minima (ms per iteration) and the ratio default / one thread
measured in the same round (median and min over rounds); the load average is printed beside them.

    python bench/thread_policy.py [--rounds 5] [--iters 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import torch
from torch import nn

from robolearn.rl.threads import set_torch_threads


def _mlp(inp: int, out: int, hidden: int = 256, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(hidden, out))


class Workload:
    """One refinement-loop iteration: an actor-critic update at batch 256 and a batch-8 policy inference."""

    def __init__(self, obs_dim: int = 40, act_dim: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        self.critic, self.actor = _mlp(obs_dim + act_dim, 2), _mlp(obs_dim, act_dim)
        self.denoiser = _mlp(obs_dim + 16 * act_dim, 16 * act_dim, layers=3)
        self.opt = torch.optim.Adam([*self.critic.parameters(), *self.actor.parameters()], lr=1e-4)
        self.obs = torch.randn(256, obs_dim, generator=g)
        self.act = torch.randn(256, act_dim, generator=g)
        self.target = torch.randn(256, 2, generator=g)
        self.cond = torch.randn(8, obs_dim, generator=g)

    def step(self) -> None:
        q = self.critic(torch.cat([self.obs, self.act], 1))
        pi = self.actor(self.obs)
        loss = (q - self.target).pow(2).mean() - self.critic(torch.cat([self.obs, pi], 1)).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            x = torch.zeros(8, self.denoiser[-1].out_features)
            for _ in range(10):
                x = self.denoiser(torch.cat([self.cond, x], 1))


def _time(work: Workload, iters: int) -> float:
    """Milliseconds per iteration over ``iters`` iterations (after one warm-up)."""
    work.step()
    t0 = time.perf_counter()
    for _ in range(iters):
        work.step()
    return (time.perf_counter() - t0) / iters * 1e3


def _neighbour(stop: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """A competing process: the same workload at torch's default thread count until ``stop``."""
    set_torch_threads(0)
    work = Workload()
    while not stop.is_set():
        work.step()


def _rounds(work: Workload, default: int, rounds: int, iters: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"1": [], str(default): []}
    for _ in range(rounds):
        for threads in (1, default):
            set_torch_threads(threads)
            times[str(threads)].append(_time(work, iters))
    return times


def _report(label: str, times: dict[str, list[float]], default: int) -> None:
    one, many = times["1"], times[str(default)]
    ratios = [m / o for o, m in zip(one, many, strict=True)]
    print(f"{label} (load average {os.getloadavg()[0]:.1f}):")
    for key, values in times.items():
        print(f"  {key:>2} thread(s): median {statistics.median(values):7.2f} ms, "
              f"min {min(values):7.2f} ms per iteration")
    print(f"  default / one thread: median {statistics.median(ratios):.2f}x, min {min(ratios):.2f}x "
          "(> 1: one thread is faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=40)
    args = parser.parse_args()
    default = set_torch_threads(0)  # torch's default: one per core
    print(f"cores {os.cpu_count()}, torch default threads {default}")
    work = Workload()
    _report("alone", _rounds(work, default, args.rounds, args.iters), default)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_neighbour, args=(stop,), daemon=True)
    proc.start()
    try:
        time.sleep(2.0)  # the neighbour imports torch and starts
        _report("beside a neighbour at default threads", _rounds(work, default, args.rounds, args.iters), default)
    finally:
        stop.set()
        proc.join(timeout=10)
    set_torch_threads(1)


if __name__ == "__main__":
    main()
