"""Gradient updates per second of the off-policy learner against its floor and against the code before.

For each update the pipeline runs (``configs/pipelines/panda_lift.yaml``: the residual branch's TD3, the
DSRL branch's SAC; ``configs/refine/rlpd_lift.yaml``'s 10-critic SAC; DSRL-NA's update with the DSRL
branch's learner settings) at batch 256, three implementations are timed in the same process:

* ``new``: :class:`robolearn.rl.learner.OffPolicyLearner` (this checkout);
* ``old``: the same files at ``--base`` (``git show`` into a temporary package), the code before the
  batched target heads, fused Adam and multi-tensor clipping / target updates;
* ``bf16``: ``new`` with ``learner.matmul_dtype: bfloat16`` (hidden layers' matrix products in bfloat16);
* ``floor``: one forward and one backward of the same networks (the new ones) that an update needs:
  target under ``no_grad`` (the REDQ heads only), critic loss plus actor loss (critic weights detached on
  the actor's path) summed and back-propagated once; no optimizer, clipping, target update or statistics.

Rounds are interleaved (every implementation, thread count and setting once per round, in a rotating
order), and each figure is reported as the min and median over rounds; ratios are taken within a round.
Thread counts 1 and 2 are both measured: the thread policy is one torch thread per process where processes
share the cores. DSRL-NA's decoder is a fixed random linear map + tanh standing in for the diffusion base
(the base costs the same in every implementation; this measures the learner). Weights and batches are
random: cost does not depend on them. ``--check`` also runs 10 updates of ``old`` and ``new`` from one seed
on the same batches and prints the largest parameter difference.

    python bench/learner_throughput.py [--rounds 5] [--updates 20] [--threads 1 2] [--base ec33e3d] [--check]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robolearn.refine.dsrl_na import NoiseAliasingLearner  # noqa: E402
from robolearn.rl.learner import OffPolicyLearner  # noqa: E402

BASE = "ec33e3d"
"""The commit before this bench's learner changes (``--base``)."""
BATCH = 256
OLD_FILES = {"rl/learner.py": "_oldrl/learner.py", "rl/networks.py": "_oldrl/networks.py",
             "rl/losses.py": "_oldrl/losses.py", "rl/augment.py": "_oldrl/augment.py",
             "refine/dsrl_na.py": "_oldrl/dsrl_na.py"}


@dataclass
class Setting:
    """One update the pipeline runs: learner fields, observation width and action widths."""

    name: str
    learner: dict[str, Any]
    obs_dim: int
    action_dim: int
    critic_action_dim: int | None = None
    residual: bool = False
    noise_aliasing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def settings() -> list[Setting]:
    """The refine branches' learners from the pipeline preset (and RLPD's from its refine preset)."""
    pipe = yaml.safe_load((ROOT / "configs/pipelines/panda_lift.yaml").read_text())
    branches = {b["method"]: b["settings"] for b in pipe["refine"]}
    policy = pipe["train"]["policy"]
    rlpd = yaml.safe_load((ROOT / "configs/refine/rlpd_lift.yaml").read_text())["learner"]
    obs, da = 35, 5  # PandaLift: 35 state features, 5 action dims (robolearn/PandaLift-v0)
    noise, chunk = policy["horizon"] * da, policy["n_action_steps"] * da
    return [
        Setting("td3 (residual)", branches["residual"]["learner"], obs + da, da, residual=True),
        Setting("sac (dsrl)", branches["dsrl"]["learner"], obs, noise),
        Setting("sac-10 (rlpd)", rlpd, obs, da),
        Setting("dsrl-na", branches["dsrl"]["learner"], obs, noise, critic_action_dim=chunk, noise_aliasing=True),
    ]


def old_modules(base: str, tmp: Path) -> tuple[Any, Any]:
    """``(learner module, dsrl_na module)`` of ``base``, imported from a temporary package."""
    pkg = tmp / "_oldrl"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for src, dst in OLD_FILES.items():
        text = subprocess.run(["git", "show", f"{base}:robolearn/{src}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
        for mod in ("learner", "networks", "losses", "augment"):
            text = text.replace(f"robolearn.rl.{mod}", f"_oldrl.{mod}")
        (tmp / dst).write_text(text)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("_oldrl.learner"), importlib.import_module("_oldrl.dsrl_na")


class LinearDecoder:
    """Stand-in for DSRL-NA's chunk decoder: ``tanh(w @ M)``, noise ``(B, Dn)`` -> chunk ``(B, Dc)``."""

    def __init__(self, noise_dim: int, chunk_dim: int) -> None:
        self.m = torch.randn(noise_dim, chunk_dim, generator=torch.Generator().manual_seed(1)) / noise_dim**0.5

    @torch.no_grad()
    def __call__(self, obs: Mapping[str, torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w @ self.m)


def residual_action(obs: Mapping[str, torch.Tensor], a: torch.Tensor) -> torch.Tensor:
    """The residual wrapper's executed action: base + 0.2 * correction, clipped (normalized units)."""
    return (obs["base"] + 0.2 * a).clamp(-1, 1)


def obs_shapes(s: Setting) -> dict[str, tuple[int, ...]]:
    return {"state": (s.obs_dim - s.action_dim,), "base": (s.action_dim,)} if s.residual else {"state": (s.obs_dim,)}


def make_learner(s: Setting, mod: Any, dsrl_mod: Any, seed: int = 0) -> OffPolicyLearner:
    """The setting's learner from module ``mod`` (new or old code)."""
    cfg_fields = {f for f in mod.LearnerConfig.__dataclass_fields__}
    cfg = mod.LearnerConfig(**{k: v for k, v in s.learner.items() if k in cfg_fields} | {"batch_size": BATCH})
    shapes = obs_shapes(s)
    if s.noise_aliasing:
        return dsrl_mod.NoiseAliasingLearner(cfg, shapes, s.action_dim, s.critic_action_dim,
                                             LinearDecoder(s.action_dim, s.critic_action_dim), seed=seed)
    fn = residual_action if s.residual else None
    return mod.OffPolicyLearner(cfg, shapes, s.action_dim, critic_action_fn=fn, seed=seed)


def make_batch(s: Setting, seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    shapes = obs_shapes(s)
    dc = s.critic_action_dim or s.action_dim
    return {"obs": {k: torch.randn(BATCH, *v, generator=g) for k, v in shapes.items()},
            "next_obs": {k: torch.randn(BATCH, *v, generator=g) for k, v in shapes.items()},
            "action": torch.rand(BATCH, dc, generator=g) * 2 - 1, "reward": torch.rand(BATCH, generator=g),
            "discount": torch.full((BATCH,), 0.99)}


def _frozen(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in net.named_parameters()}


def floor_step(learner: OffPolicyLearner, batch: Mapping[str, Any], actor: bool) -> None:
    """The forward and backward passes of one update of ``learner`` (new code), one backward in all."""
    obs, nxt = batch["obs"], batch["next_obs"]
    cfg, fn = learner.cfg, learner.critic_action_fn
    with torch.no_grad():
        a2 = learner.actor.sample(nxt)[0] if cfg.algo == "sac" else learner.actor_target.mode(nxt)
        heads = torch.arange(cfg.num_min) if cfg.num_min < cfg.num_critics else None
        v = learner.critic_target(nxt, fn(nxt, a2), heads).squeeze(-1).min(0).values
        target = batch["reward"] + batch["discount"] * v
    loss = F.mse_loss(learner.critic(obs, batch["action"]).squeeze(-1), target.expand(cfg.num_critics, -1))
    noise_critic = getattr(learner, "noise_critic", None)
    if noise_critic is not None:  # DSRL-NA: distil Q_A into Q_W, actor on Q_W
        with torch.no_grad():
            w = learner.actor.sample(obs)[0]
            qa = learner.critic(obs, fn(obs, w)).squeeze(-1).mean(0)
        loss = loss + F.mse_loss(noise_critic(obs, w).squeeze(-1), qa.expand(cfg.num_critics, -1))
    if actor:
        a = learner.actor.sample(obs)[0] if cfg.algo == "sac" else learner.actor.mode(obs)
        critic = noise_critic if noise_critic is not None else learner.critic
        x = a if noise_critic is not None else fn(obs, a)
        loss = loss - torch.func.functional_call(critic, _frozen(critic), (obs, x)).mean()
    loss.backward()
    for p in learner.actor.parameters():
        p.grad = None
    for net in (learner.critic, noise_critic):
        for p in net.parameters() if net is not None else ():
            p.grad = None


def timed(step: Callable[[int], None], n: int, warm: int = 2) -> float:
    """Updates per second of ``n`` calls of ``step(i)`` after ``warm`` untimed ones."""
    for i in range(warm):
        step(i)
    t = time.perf_counter()
    for i in range(n):
        step(i)
    return n / (time.perf_counter() - t)


def stepper(kind: str, learner: Any, batch: Mapping[str, Any]) -> Callable[[int], None]:
    if kind == "floor":
        return lambda i: floor_step(learner, batch, actor=i % learner.cfg.actor_delay == 0)
    return lambda i: learner.update(batch)


def measure(args: argparse.Namespace, old: tuple[Any, Any]) -> dict[tuple[int, str, str], list[float]]:
    """``{(threads, setting, impl): [updates/s per round]}``."""
    new = (sys.modules[OffPolicyLearner.__module__], sys.modules[NoiseAliasingLearner.__module__])
    cases = []
    for s in settings():
        batch = make_batch(s, 0)
        nl, ol = make_learner(s, *new), make_learner(s, *old)
        bf = make_learner(Setting(**{**vars(s), "learner": {**s.learner, "matmul_dtype": "bfloat16"}}), *new)
        cases += [(s.name, "floor", stepper("floor", nl, batch)), (s.name, "old", stepper("old", ol, batch)),
                  (s.name, "new", stepper("new", nl, batch)), (s.name, "bf16", stepper("bf16", bf, batch))]
    rates: dict[tuple[int, str, str], list[float]] = {}
    for r in range(args.rounds):
        for threads in args.threads:
            torch.set_num_threads(threads)
            shift = r % len(cases)
            for name, impl, step in cases[shift:] + cases[:shift]:
                rates.setdefault((threads, name, impl), []).append(timed(step, args.updates))
        print(f"  round {r + 1}/{args.rounds} done (load average {os.getloadavg()[0]:.1f})", flush=True)
    return rates


def report(rates: dict[tuple[int, str, str], list[float]], args: argparse.Namespace) -> None:
    med = statistics.median
    print(f"\nupdates/s at batch {BATCH}, {args.rounds} interleaved rounds of {args.updates} updates "
          f"(min / median over rounds); ratios per round, min / median")
    print(f"{'threads':>7} {'update':<15} {'floor':>13} {'old':>13} {'new':>13} {'bf16':>13} "
          f"{'new/old':>11} {'new cost/floor':>15} {'bf16/old':>11} {'bf16/new':>11}")
    for threads in args.threads:
        for name in dict.fromkeys(k[1] for k in rates):
            f, o, n, h = (rates[(threads, name, impl)] for impl in ("floor", "old", "new", "bf16"))
            speed = [b / a for a, b in zip(o, n, strict=True)]
            cost = [a / b for a, b in zip(f, n, strict=True)]
            half = [b / a for a, b in zip(o, h, strict=True)]
            half_new = [b / a for a, b in zip(n, h, strict=True)]
            cells = [f"{min(x):5.0f} / {med(x):5.0f}" for x in (f, o, n, h)]
            print(f"{threads:>7} {name:<15} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {cells[3]:>13} "
                  f"{min(speed):4.2f} / {med(speed):4.2f} {min(cost):6.2f} / {med(cost):4.2f} "
                  f"{min(half):4.2f} / {med(half):4.2f} {min(half_new):4.2f} / {med(half_new):4.2f}")
    if len(args.threads) > 1:
        a, b = args.threads[:2]
        print(f"\nnew, {b} threads vs {a} (median rate ratio; > 1: {b} threads faster):")
        for name in dict.fromkeys(k[1] for k in rates):
            print(f"  {name:<15} {med(rates[(b, name, 'new')]) / med(rates[(a, name, 'new')]):.2f}")


def check(old: tuple[Any, Any], n: int = 10) -> None:
    """Largest parameter difference between old and new after ``n`` updates from one seed and batch list."""
    new = (sys.modules[OffPolicyLearner.__module__], sys.modules[NoiseAliasingLearner.__module__])
    print("\nparity with the old code (same seed, same batches, float32):")
    for s in settings():
        a, b = make_learner(s, *old), make_learner(s, *new)
        for i in range(n):
            batch = make_batch(s, 100 + i)
            a.update(batch), b.update(batch)
        diff = max((pa - pb).abs().max().item() for name in ("actor", "critic") for pa, pb in
                   zip(getattr(a, name).parameters(), getattr(b, name).parameters(), strict=True))
        print(f"  {s.name:<15} max |param old - new| after {n} updates: {diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=20, help="timed updates per cell (even: the actor cadence)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--base", default=BASE, help="git revision of the old code")
    parser.add_argument("--check", action="store_true", help="also print the parameter parity with the old code")
    args = parser.parse_args()
    print(f"learner throughput: torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start. The machine is shared: other processes' load moves every figure; "
          "compare within a round (the ratios), not across runs.", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        old = old_modules(args.base, Path(tmp))
        if args.check:
            torch.set_num_threads(1)
            check(old)
        report(measure(args, old), args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
