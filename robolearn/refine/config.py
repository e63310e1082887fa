"""``RefineConfig``: everything ``robolearn refine`` needs, saved as ``config.yaml`` in the run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from robolearn.rl.learner import LearnerConfig

METHODS = ("residual", "dsrl", "dsrl-na", "rlpd")


@dataclass
class RefineConfig:
    """Refinement of a frozen base policy with off-policy RL."""

    method: Literal["residual", "dsrl", "dsrl-na", "rlpd"] = "residual"
    """residual (ResFiT), dsrl (noise-space SAC), dsrl-na (noise aliasing) or rlpd (SAC from scratch)."""
    base: str = "expert:noise=1.5"
    """Base policy: expert[:noise=X], random, zero, or a policy checkpoint / refined-policy directory."""
    env_id: str = "robolearn/PandaLift-v0"
    """Registered env id."""
    task: dict[str, Any] = field(default_factory=dict)
    """Task settings for the training and evaluation envs (``gymnasium.make`` keyword arguments), e.g.
    ``{push_force: 120.0}`` for G1PushRecovery."""
    num_envs: int = 8
    """Parallel training envs."""
    total_env_steps: int = 50_000
    """Environment steps (transitions of single envs) to train for."""
    seed: int = 0
    """Seeds envs, networks and sampling."""
    residual_scale: float | list[float] = 0.1
    """Residual: largest correction, as a fraction of the normalized action range; one for every action
    dimension, or a list with one per dimension (e.g. a gripper the residual may fully override:
    ``[0.2, 0.2, 0.2, 0.2, 1.0]`` on the Panda's ``ee_delta`` actions)."""
    residual_plan_steps: int = 0
    """Residual: how many of the base chunk's next actions the actor and critic see besides the current one
    (``base_plan``; 0: the current one only, as ResFiT; ``n_action_steps - 1`` covers a whole chunk)."""
    noise_bound: float = 1.5
    """DSRL: the actor's noise lies in [-bound, bound]."""
    n_step: int = 3
    """n-step returns."""
    replay_capacity: int = 200_000
    """Online replay capacity (transitions)."""
    updates_per_env_step: float = 0.5
    """Update-to-data ratio: gradient updates per environment transition (per wrapper step for DSRL)."""
    random_steps: int = 2_000
    """Warm-up env steps with uniform actor actions (base + uniform noise for residual)."""
    critic_warmup_updates: int = 500
    """Critic-only updates after the warm-up, before the actor starts learning."""
    critic_warmup_burst: bool = False
    """Do the ``critic_warmup_updates`` all at once when updates begin (after ``random_steps``, on that data
    and the demonstrations), so they spend no env steps and the actor learns from then on. Off: they are
    interleaved with collection at ``updates_per_env_step``, and the actor starts
    ``critic_warmup_updates / updates_per_env_step`` env steps later."""
    demos: str = ""
    """Offline data: a robolearn dataset directory, or a named policy like 'expert:noise=0' rolled out."""
    demo_episodes: int = 20
    """Episodes rolled out when ``demos`` names a policy."""
    offline_fraction: float = 0.5
    """Share of each batch drawn from the offline buffer (RLPD's 0.5)."""
    warm_start_episodes: int = 0
    """WSRL: base-policy episodes put in the online buffer before updates; then no offline data is kept."""
    eval_every: int = 5_000
    """Evaluate every this many env steps (and at the start and the end; 0: only there)."""
    eval_episodes: int = 32
    """Episodes per evaluation (deterministic actor, seeds 10_000 + i)."""
    eval_envs: int = 8
    """Parallel evaluation envs."""
    select_best: bool = False
    """Save as the refined policy the actor of the evaluation with the highest success rate (the earliest on
    ties; robomimic's best-rollout checkpoint) instead of the last one. Off-policy RL on sparse rewards can
    rise and then fall; the evaluations use their own seeds, so judge the choice on held-out episodes."""
    checkpoint_every: int = 5_000
    """Checkpoint every this many env steps (and at the end; 0: only there)."""
    out_dir: str = "runs"
    """Parent of the run directory."""
    run_name: str = ""
    """Run directory name (default refine-<method>-<task>-<time>)."""
    device: str = "cpu"
    """Torch device of the learner."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Off-policy learner settings."""

    def validate(self) -> None:
        """Raise a ValueError that names the first bad setting (before a run directory is made)."""
        for key in ("eval_every", "checkpoint_every", "total_env_steps"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0 (0: only at the end of training), got {getattr(self, key)}")
        if self.residual_plan_steps < 0:
            raise ValueError(f"residual_plan_steps must be >= 0 (0: the current base action only), "
                             f"got {self.residual_plan_steps}")
