"""Evaluation cost: serial single envs against the batched env, and the in-loop evaluation budget of the presets.

Times :func:`robolearn.evaluate.evaluate` per call, env construction included, in interleaved rounds:
``serial`` (``batched=False``: ``num_envs`` single envs stepped one after another, rebuilt every call, as
before), ``batched`` (one batched env built in the call) and ``batched, cached`` (the envs of an
:class:`~robolearn.evaluate.EnvCache` built by an earlier call, as the pipeline's evaluations reuse them).
Each round checks that the three give identical outcomes. The policy is the task's noisy scripted expert,
or ``--policy`` (a checkpoint directory: the diffusion base of a pipeline run). Prints env steps per
second (median and min over rounds) and the ratio to serial measured in the same round. Then, for every
preset of ``configs/refine`` and ``configs/pipelines``, the in-loop evaluation's env steps at the time
limit against its training env steps (:meth:`RefineConfig.eval_env_steps`).

    python bench/eval_throughput.py [--episodes 32] [--rounds 3] [--policy runs/.../base]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml

from robolearn.core.config import to_dict
from robolearn.evaluate import EnvCache, evaluate
from robolearn.policy_factory import load_policy
from robolearn.refine.config import RefineConfig, load_refine_config, refine_config_from_dict
from robolearn.rl.threads import set_torch_threads
from robolearn.sim.registry import task

ROOT = Path(__file__).resolve().parents[1]
MODES = ("serial", "batched", "batched, cached")


def _time_modes(env_id: str, spec: str, episodes: int, rounds: int) -> None:
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    cache = EnvCache()
    evaluate(load_policy(spec, env_id, seed=0), env_id, episodes=8, seed=0, progress=False, envs=cache)  # builds
    try:
        for _ in range(rounds):
            outcomes = []
            for mode in MODES:
                policy = load_policy(spec, env_id, seed=0)
                t0 = time.perf_counter()
                res = evaluate(policy, env_id, episodes=episodes, seed=10_000, progress=False,
                               batched=mode != "serial", envs=cache if mode == "batched, cached" else None)
                rates[mode].append(sum(res.lengths) / (time.perf_counter() - t0))
                outcomes.append((res.successes, res.returns, res.lengths))
            same = all(o == outcomes[0] for o in outcomes)
            print(f"  round: {', '.join(f'{m} {rates[m][-1]:.0f}' for m in MODES)} steps/s; identical: {same}")
    finally:
        cache.close()
    print(f"{env_id} [{spec}], {episodes} episodes, 8 envs: env steps/s (median, min) and ratio to serial")
    for mode in MODES:
        ratios = [b / s for s, b in zip(rates["serial"], rates[mode], strict=True)]
        print(f"  {mode:>16}: {statistics.median(rates[mode]):7.0f} {min(rates[mode]):7.0f}   "
              f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}x)")


def _budgets() -> None:
    def limit(env_id: str) -> int:
        return task(env_id).max_episode_steps

    print("in-loop evaluation at the time limit / training env steps (eval_budget 0.25):")
    for preset in sorted((ROOT / "configs" / "refine").glob("*.yaml")):
        cfg = load_refine_config(preset, [])
        cost = cfg.eval_env_steps(limit(cfg.env_id))
        print(f"  {preset.name:>28}: {cost:>6} / {cfg.total_env_steps} = {cost / cfg.total_env_steps:.0%}")
    for preset in sorted((ROOT / "configs" / "pipelines").glob("*.yaml")):
        data = yaml.safe_load(preset.read_text())
        for branch in data["refine"]:
            settings = {**to_dict(RefineConfig()), **branch["settings"], "method": branch["method"],
                        "env_id": data["env_id"]}
            cfg = refine_config_from_dict(settings, preset.name)
            cost = cfg.eval_env_steps(limit(cfg.env_id))
            print(f"  {preset.name + ' ' + branch['method']:>28}: {cost:>6} / {cfg.total_env_steps} "
                  f"= {cost / cfg.total_env_steps:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=["robolearn/PandaLift-v0", "robolearn/QuadHover-v0"])
    parser.add_argument("--policy", default="expert:noise=0.5", help="policy spec or checkpoint directory")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    set_torch_threads(1)
    for env_id in args.env:
        _time_modes(env_id, args.policy, args.episodes, args.rounds)
    _budgets()


if __name__ == "__main__":
    main()
