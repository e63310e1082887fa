"""An unmodified third-party trainer on a robolearn task: rsl_rl's PPO on QuadHover-v0.

rsl_rl's own ``OnPolicyRunner`` trains through :mod:`robolearn.sim.rsl_rl_env` (no robolearn code in
the learner). Every ``--chunk`` iterations the current deterministic policy is evaluated on fresh
seeded episodes and the mean return per episode is printed, so the figure shows
whether reward rises within a few minutes on the CPU.

    python bench/rsl_rl_quadhover.py [--minutes 4] [--num-envs 32]
"""

from __future__ import annotations

import argparse
import time

import torch

import robolearn.sim.envs  # noqa: F401  (registers the tasks with gymnasium)
from robolearn.sim.rsl_rl_env import make_rsl_rl_env


def ppo_cfg(steps_per_env: int) -> dict:
    """A small rsl_rl PPO configuration (rsl-rl-lib 5.x schema)."""
    mlp = {"class_name": "MLPModel", "hidden_dims": [64, 64], "activation": "elu"}
    return {
        "num_steps_per_env": steps_per_env,
        "save_interval": 10_000,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "actor": {**mlp, "obs_normalization": True,
                  "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 0.3}},
        "critic": {**mlp, "obs_normalization": True},
        "algorithm": {"class_name": "PPO", "num_learning_epochs": 4, "num_mini_batches": 4, "gamma": 0.99,
                      "learning_rate": 3e-4, "schedule": "adaptive", "desired_kl": 0.01, "entropy_coef": 0.0},
    }


def evaluate(policy, env_id: str, episodes: int, seed: int) -> float:
    """Mean return of the deterministic policy over ``episodes`` seeded episodes (one per env)."""
    env = make_rsl_rl_env(env_id, episodes, seed=seed)
    obs = env.get_observations()
    returns = torch.zeros(episodes)
    finished = torch.zeros(episodes, dtype=torch.bool)
    with torch.no_grad():
        while not finished.all():
            obs, rewards, dones, _ = env.step(policy(obs))
            returns += rewards * (~finished)
            finished |= dones.bool()
    env.close()
    return float(returns.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="robolearn/QuadHover-v0")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--steps-per-env", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=5, help="learning iterations between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=8)
    args = parser.parse_args()

    torch.manual_seed(0)
    env = make_rsl_rl_env(args.env, args.num_envs, seed=0)
    from rsl_rl.runners import OnPolicyRunner

    runner = OnPolicyRunner(env, ppo_cfg(args.steps_per_env), log_dir=None, device="cpu")
    start = time.perf_counter()
    rows = []
    iteration, steps = 0, 0
    while True:
        ret = evaluate(runner.get_inference_policy(), args.env, args.eval_episodes, seed=10_000)
        elapsed = time.perf_counter() - start
        rows.append((iteration, steps, elapsed, ret))
        print(f"iter {iteration:4d}  env steps {steps:8d}  {elapsed:6.0f} s  eval return {ret:8.2f}", flush=True)
        if elapsed > 60 * args.minutes:
            break
        runner.learn(num_learning_iterations=args.chunk, init_at_random_ep_len=iteration == 0)
        iteration += args.chunk
        steps += args.chunk * args.num_envs * args.steps_per_env
    env.close()
    first, best = rows[0][3], max(r[3] for r in rows)
    print(f"eval return: start {first:.2f}, best {best:.2f}, last {rows[-1][3]:.2f} "
          f"({'rose' if rows[-1][3] > first else 'did not rise'}) over {rows[-1][2]:.0f} s, "
          f"{rows[-1][1]} env steps")


if __name__ == "__main__":
    main()
