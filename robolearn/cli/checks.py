"""Checks the CLI makes before long work starts, so a mistake is one line instead of a traceback later."""

from __future__ import annotations

from typing import Any


class UsageError(ValueError):
    """An argument that cannot work (the message names it and the fix)."""


def expected_observation_keys(policy: Any) -> list[str] | None:
    """The observation keys a policy reads (a base policy's ``keys``, found through refinement wrappers'
    ``base``), or None when it does not say (named policies read whatever the task gives)."""
    seen = 0
    while policy is not None and seen < 8:
        keys = getattr(policy, "keys", None)
        if isinstance(keys, (list, tuple)) and all(isinstance(k, str) for k in keys):
            return list(keys)
        policy, seen = getattr(policy, "base", None), seen + 1
    return None


def check_env_id(env_id: str) -> None:
    """Refuse an env id that is not a robolearn task before a run directory is made."""
    from robolearn.sim.registry import TASKS

    if env_id not in TASKS:
        raise UsageError(f"unknown env '{env_id}'; choose from {', '.join(TASKS)} (see 'robolearn envs')")


def check_observation_keys(policy: Any, env_id: str, spec: str) -> None:
    """Refuse a policy whose observation keys the task does not provide (a Panda policy on QuadHover)."""
    import gymnasium as gym

    from robolearn.sim.registry import gym_make

    keys = expected_observation_keys(policy)
    if keys is None:
        return
    env = gym_make(env_id)
    try:
        space = env.observation_space
        provided = set(space.spaces) if isinstance(space, gym.spaces.Dict) else set()
    finally:
        env.close()
    missing = [k for k in keys if k not in provided and not k.startswith("pixels/")]
    if missing:
        raise UsageError(f"policy {spec} reads observation {', '.join(map(repr, missing))}, which {env_id} does "
                         f"not provide (it has {', '.join(sorted(provided))}); evaluate it on the task it was "
                         "trained on")


def check_launch_inputs(config: str, policy: str | None) -> None:
    """``robolearn launch`` takes a deploy preset, not a policy directory (that goes to ``--policy``)."""
    from pathlib import Path

    if Path(config).is_dir():
        hint = f"; a policy directory goes to --policy {config}" if policy is None else ""
        raise UsageError(f"{config} is a directory; launch takes a deploy preset such as "
                         f"configs/deploy/panda_sim.yaml{hint}")


def check_policy_loads(spec: str, env_id: str) -> None:
    """Load the policy ``spec`` for ``env_id`` and check its observation keys, as a node would at start."""
    from robolearn.policy_factory import load_policy

    check_observation_keys(load_policy(spec, env_id), env_id, spec)
