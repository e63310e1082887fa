"""``RefineConfig``: everything ``robolearn refine`` needs, saved as ``config.yaml`` in the run directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robolearn.core.config import ConfigError, apply_overrides, from_dict, load_run_config
from robolearn.refine.methods import MethodParams, RefineMethod, get_method
from robolearn.rl.devices import resolve_device
from robolearn.rl.learner import LearnerConfig

RENAMED = {"residual_scale": "params.scale", "residual_plan_steps": "params.plan_steps",
           "noise_bound": "params.bound"}
"""Keys of earlier presets -> where they live now."""
RUNNERS = ("sync", "ray")
"""Where the off-policy loop's envs step (``runner``)."""


@dataclass
class RefineConfig:
    """Refinement of a frozen base policy with off-policy RL."""

    method: str = "residual"
    """A key of robolearn.refine.methods.METHODS: residual (ResFiT), dsrl (noise-space SAC), dsrl-na (noise
    aliasing) or rlpd (SAC from scratch)."""
    base: str = "expert:noise=1.5"
    """Base policy: expert[:noise=X], random, zero, or a policy checkpoint / refined-policy directory."""
    env_id: str = "robolearn/PandaLift-v0"
    """Registered env id."""
    task: dict[str, Any] = field(default_factory=dict)
    """Task settings for the training and evaluation envs (``gymnasium.make`` keyword arguments), e.g.
    ``{push_force: 120.0}`` for G1PushRecovery."""
    dynamics: str = "nominal"
    """Dynamics preset of the refinement's envs (``configs/dynamics/<task>.yaml``: ``nominal``, ``randomize``),
    its in-loop evaluations included: refining under ``randomize`` prepares a policy for dynamics it has not
    seen, such as the held-out ``real-gap`` preset the pipeline reports."""
    visual: str = "nominal"
    """Visual preset of the refinement's envs (``configs/visual/<task>.yaml``: ``nominal``, ``train``): what
    cameras see while a camera policy is refined, its in-loop evaluations included (``held-out`` stays for
    the final evaluation)."""
    obs_keys: list[str] = field(default_factory=list)
    """The env observation keys the base, the actor and the critic are given (empty: every key). A camera
    policy refined without privileged state lists proprioception and ``pixels/<camera>`` keys here (the task's
    ``pixels`` setting renders them); the other keys never leave the envs."""
    num_envs: int = 8
    """Parallel training envs."""
    total_env_steps: int = 50_000
    """Environment steps (transitions of single envs) to train for."""
    seed: int = 0
    """Seeds envs, networks and sampling."""
    params: dict[str, Any] = field(default_factory=dict)
    """The method's own settings, checked against its params dataclass (unknown keys rejected by name):
    residual ``{scale: 0.1, plan_steps: 0}``, dsrl / dsrl-na ``{bound: 1.5}``, rlpd none (see
    :mod:`robolearn.refine.methods`). Unset keys take the dataclass's defaults."""
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
    eval_every: int = 10_000
    """Evaluate every this many env steps (and at the start and the end; 0: only there)."""
    eval_episodes: int = 16
    """Episodes per evaluation (deterministic actor, seeds 10_000 + i)."""
    eval_envs: int = 8
    """Parallel evaluation envs."""
    eval_budget: float = 0.25
    """Largest share of ``total_env_steps`` the in-loop evaluations may cost, counted at the task's time limit
    (:meth:`eval_env_steps`); checked when the config is loaded (0: unchecked, for smoke-test budgets)."""
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
    device: str = "auto"
    """Torch device of the learner and the base policy: auto, cpu, cuda, cuda:N or mps
    (:mod:`robolearn.rl.devices`). auto takes cuda if torch sees a GPU, else mps, else cpu: on a machine without
    an accelerator that is cpu, so the default changes nothing there. The envs step on the CPU (MuJoCo)."""
    runner: str = "sync"
    """Where the envs step: sync (in this process, between the learner's updates; deterministic for a seed) or
    ray (``actors`` Ray actors, each stepping ``num_envs`` envs of its own on the actor weights it was last
    sent, while this process runs the learner; needs robolearn[dist]; see robolearn.dist.actors)."""
    actors: int = 2
    """Ray actors collecting (runner ray); each steps ``num_envs`` envs of its own and takes one CPU."""
    weight_sync_every: int = 50
    """Updates between two sends of the actor weights to the Ray actors (runner ray)."""
    ray_address: str = "auto"
    """The Ray cluster of runner ray: auto (the one ``ray start`` runs on this machine, else one started here on
    127.0.0.1 for the run) or a head's host:port (ray://host:10001 for Ray Client)."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Off-policy learner settings."""

    def plugin(self, methods: dict[str, RefineMethod] | None = None) -> RefineMethod:
        """The method's plug-in from ``methods`` (default :data:`~robolearn.refine.methods.METHODS`)."""
        try:
            return get_method(self.method, methods)
        except ValueError as err:
            raise ConfigError(f"method: {err}") from err

    def method_params(self, methods: dict[str, RefineMethod] | None = None) -> MethodParams:
        """``params`` loaded into the method's params dataclass; a ConfigError names a bad key and the allowed
        ones."""
        return self.plugin(methods).params_type.from_dict(self.params, f"params (method {self.method})")

    def validate(self, methods: dict[str, RefineMethod] | None = None) -> None:
        """Raise a ValueError that names the first bad setting (before a run directory is made)."""
        if self.total_env_steps < 1:
            raise ValueError(f"total_env_steps (--steps) must be >= 1, got {self.total_env_steps}")
        for key in ("eval_every", "checkpoint_every"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0 (0: only at the end of training), got {getattr(self, key)}")
        if self.runner not in RUNNERS:
            raise ValueError(f"runner must be one of {', '.join(RUNNERS)}, got {self.runner!r}")
        if self.actors < 1 or self.weight_sync_every < 1:
            raise ValueError(f"actors and weight_sync_every must be >= 1, got {self.actors} and "
                             f"{self.weight_sync_every}")
        resolve_device(self.device)  # misspelt, or a device this machine lacks
        self.method_params(methods)

    def eval_env_steps(self, max_episode_steps: int) -> int:
        """Env steps the in-loop evaluations cost at most: one at the start, one every ``eval_every`` and one at
        the end, each stepping all ``eval_envs`` envs until every env has run its quota of
        ``ceil(eval_episodes / eval_envs)`` episodes of at most ``max_episode_steps`` steps."""
        every, total = self.eval_every, self.total_env_steps
        evaluations = 1 + (-(-total // every) if every > 0 else 1)
        per_env = -(-self.eval_episodes // self.eval_envs)
        return evaluations * self.eval_envs * per_env * max_episode_steps

    def eval_budget_error(self, max_episode_steps: int) -> str | None:
        """One line naming the fix when the in-loop evaluations may cost more than ``eval_budget`` of the
        training env steps (None when they fit or ``eval_budget`` is 0)."""
        if self.eval_budget <= 0:
            return None
        cost, allowed = self.eval_env_steps(max_episode_steps), self.eval_budget * self.total_env_steps
        if cost <= allowed:
            return None
        return (f"in-loop evaluation may cost {cost} env steps ({cost / max(self.total_env_steps, 1):.0%} of "
                f"total_env_steps={self.total_env_steps}, limit eval_budget={self.eval_budget:g}) at "
                f"{max_episode_steps} steps per episode; raise eval_every (now {self.eval_every}) or lower "
                f"eval_episodes (now {self.eval_episodes})")


def renamed_key_error(err: ConfigError) -> ConfigError:
    """``err`` with the new place of a key that moved (e.g. ``residual_scale`` -> ``params.scale``)."""
    for old, new in RENAMED.items():
        if f"unknown key '{old}'" in str(err):
            return ConfigError(f"{str(err).split(';')[0]}: it moved to '{new}' (params of the chosen method)")
    return err


def check_eval_budget(cfg: RefineConfig, time_limit: Callable[[str], int] | None) -> None:
    """Raise a ConfigError when ``cfg``'s in-loop evaluations exceed its ``eval_budget``; ``time_limit`` gives a
    task's episode length limit (None: not checked)."""
    if time_limit is not None:
        error = cfg.eval_budget_error(time_limit(cfg.env_id))
        if error:
            raise ConfigError(error)


def refine_config_from_dict(data: dict[str, Any], source: str,
                            time_limit: Callable[[str], int] | None = None) -> RefineConfig:
    """A checked :class:`RefineConfig` from a mapping (a pipeline branch's settings); with ``time_limit`` (env id
    -> max episode steps) the evaluation budget is checked too (:func:`check_eval_budget`)."""
    try:
        cfg = from_dict(RefineConfig, data, source)
        cfg.validate()
        check_eval_budget(cfg, time_limit)
    except ConfigError as err:
        raise renamed_key_error(err) from err
    return cfg


def migrate_saved(data: dict[str, Any]) -> dict[str, Any]:
    """A run's saved ``config.yaml`` written before the methods' params moved under ``params``, in today's keys
    (keys of other methods than the run's are dropped, as they were unused)."""
    data = dict(data)
    old = {k: data.pop(k) for k in RENAMED if k in data}
    if old:
        mine = {"residual": ("residual_scale", "residual_plan_steps"), "dsrl": ("noise_bound",),
                "dsrl-na": ("noise_bound",)}.get(data.get("method", "residual"), ())
        params = {RENAMED[k].split(".", 1)[1]: v for k, v in old.items() if k in mine}
        data["params"] = {**params, **data.get("params", {})}
    return data


def load_refine_config(path: str | Path | None, overrides: list[str], run_dir: str | Path | None = None,
                       resume: bool = False, time_limit: Callable[[str], int] | None = None) -> RefineConfig:
    """The run's :class:`RefineConfig` (see :func:`~robolearn.core.config.load_run_config`), checked, the
    method's params included, before anything runs; a new run's evaluation budget too when ``time_limit``
    is given (:func:`check_eval_budget`). With ``resume`` the run's saved config is read, in the earlier
    layout too (:func:`migrate_saved`)."""
    try:
        saved_run = bool(resume and run_dir and (Path(run_dir) / "config.yaml").is_file())
        if saved_run:
            saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
            cfg = from_dict(RefineConfig, migrate_saved(saved), str(Path(run_dir) / "config.yaml"))
            cfg = apply_overrides(cfg, overrides) if overrides else cfg
        else:
            cfg = load_run_config(RefineConfig, path, overrides, run_dir, resume)
        cfg.validate()  # the settings themselves first: a budget of a negative step count means nothing
        if not saved_run:
            check_eval_budget(cfg, time_limit)
    except ConfigError as err:
        raise renamed_key_error(err) from err
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return cfg
