"""``HILConfig``: everything ``robolearn hil`` needs, saved as ``config.yaml`` in the run directory."""

from __future__ import annotations

from dataclasses import dataclass, field

from robolearn.hil.sim_human import SimHumanConfig
from robolearn.refine.config import RUNNERS
from robolearn.refine.methods.residual import ResidualParams
from robolearn.rl.devices import resolve_device
from robolearn.rl.learner import LearnerConfig
from robolearn.teleop.devices import DEVICES as TELEOP_DEVICES

DEVICES = ("sim-human", *TELEOP_DEVICES)
"""Who intervenes: the simulated person or a teleop device (:data:`robolearn.teleop.devices.DEVICES`)."""


@dataclass
class HILConfig:
    """Human-in-the-loop refinement of a frozen base policy (residual actor on top of it)."""

    mode: str = "hil-serl"
    """hil-serl, rlif or hg-dagger (see robolearn.hil.modes)."""
    device: str = "sim-human"
    """Who intervenes: sim-human (scripted expert), keyboard, gamepad or spacemouse (one env, real time)."""
    env_id: str = "robolearn/PandaPegInsert-v0"
    """Registered env id."""
    base: str = "expert:noise=0.35"
    """Base policy: expert[:noise=X], or a policy checkpoint / refined-policy directory."""
    num_envs: int = 4
    """Parallel envs (sim-human only; a teleop device drives one)."""
    total_env_steps: int = 20_000
    """Environment steps (transitions of single envs) to run for."""
    seed: int = 0
    """Seeds envs, networks, sampling and the simulated human."""
    residual: ResidualParams = field(default_factory=ResidualParams)
    """The residual actor's settings (``scale``, ``plan_steps``): the same dataclass and defaults as
    ``robolearn refine --method residual``'s ``params``."""
    n_step: int = 3
    """n-step returns."""
    replay_capacity: int = 100_000
    """Capacity of the online and the demonstration buffers (transitions)."""
    updates_per_env_step: float = 0.5
    """Gradient (or BC) updates per environment transition."""
    critic_warmup_updates: int = 200
    """Critic-only updates before the actor learns (RL modes)."""
    min_buffer: int = 256
    """No updates until the sampled buffer holds this many transitions."""
    offline_fraction: float = 0.5
    """Share of each RL batch drawn from the demonstration buffer (RLPD's 0.5)."""
    publish_every: int = 50
    """The learner publishes actor weights to the acting policy every this many updates."""
    checkpoint_every: int = 1_000
    """The learner checkpoints every this many updates (and at the end)."""
    eval_every: int = 0
    """Evaluate the policy alone (no human) every this many env steps, and at the end (0: never)."""
    eval_episodes: int = 16
    """Episodes per evaluation (deterministic actor, fixed seeds)."""
    split: bool = False
    """Run the loop's learner side in its own process (runner ``process``: the robot keeps its control rate
    while the learner updates); off: in the loop's process (runner ``sync``, deterministic for a seed)."""
    runner: str = "sync"
    """Where the envs step: sync (in this process) or ray (``actors`` Ray actors, each stepping ``num_envs`` envs
    of its own with a simulated person, on the actor weights it was last sent; device sim-human only; needs
    robolearn[dist]; see robolearn.dist.actors). Independent of ``split`` (where the learner side runs)."""
    actors: int = 2
    """Ray actors collecting (runner ray); each steps ``num_envs`` envs and takes one CPU."""
    weight_sync_every: int = 50
    """Updates between two sends of the actor weights to the Ray actors (runner ray)."""
    ray_address: str = "auto"
    """The Ray cluster of runner ray: auto (the one ``ray start`` runs on this machine, else one started here on
    127.0.0.1) or a head's host:port."""
    dataset: bool = True
    """Write every episode (with intervention flags) to <run_dir>/dataset."""
    realtime: bool = False
    """Pace the actor at the env's control rate (on by default for teleop devices in the CLI)."""
    max_episode_steps: int = 0
    """Episode time limit in control steps (0: the registry's)."""
    reward_classifier: str = ""
    """A success classifier directory (robolearn reward-classifier train): its verdict replaces the env's
    reward and ends the episode on success (empty: the env's reward; RLIF ignores the reward, not the ends)."""
    classifier_threshold: float = 0.5
    """Success (reward 1, terminated) when the classifier's probability is >= this."""
    sim_human: SimHumanConfig = field(default_factory=SimHumanConfig)
    """The simulated person (device sim-human)."""
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(algo="td3", hidden=[256, 256], drq_pad=0))
    """Off-policy learner hyper-parameters (its actor is what HG-DAgger clones)."""
    out_dir: str = "runs"
    """Parent of the run directory."""
    run_name: str = ""
    """Run directory name (default hil-<mode>-<task>-<time>)."""
    device_torch: str = "auto"
    """Torch device of the learner, the base policy and the reward classifier: auto, cpu, cuda, cuda:N or mps
    (:mod:`robolearn.rl.devices`; named ``device_torch`` because ``device`` names who intervenes). auto takes cuda
    if torch sees a GPU, else mps, else cpu: on a machine without an accelerator that is cpu, so the default
    changes nothing there. The acting copy of the actor stays on the CPU (it runs in the robot's loop on the
    weights the learner publishes), and so do the envs (MuJoCo)."""

    def validate(self) -> None:
        from robolearn.hil.modes import mode_spec

        mode_spec(self.mode)
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose from {', '.join(DEVICES)}")
        if self.device != "sim-human" and self.num_envs != 1:
            raise ValueError(f"a {self.device} drives one robot: num_envs must be 1, got {self.num_envs}")
        if self.num_envs < 1 or self.total_env_steps < 1 or self.publish_every < 1 or self.checkpoint_every < 1:
            raise ValueError("num_envs, total_env_steps, publish_every and checkpoint_every must be >= 1")
        if self.runner not in RUNNERS:
            raise ValueError(f"runner must be one of {', '.join(RUNNERS)}, got {self.runner!r}")
        if self.runner == "ray" and (self.device != "sim-human" or self.realtime):
            raise ValueError("runner ray steps the envs in Ray actors, away from a person's device: use device "
                             "sim-human without realtime, or runner sync")
        if self.actors < 1 or self.weight_sync_every < 1:
            raise ValueError(f"actors and weight_sync_every must be >= 1, got {self.actors} and "
                             f"{self.weight_sync_every}")
        if not 0 < self.classifier_threshold <= 1:
            raise ValueError(f"classifier_threshold must be in (0, 1], got {self.classifier_threshold}")
        if not 0 <= self.offline_fraction <= 1:
            raise ValueError(f"offline_fraction must be in [0, 1], got {self.offline_fraction}")
        resolve_device(self.device_torch)  # misspelt, or a device this machine lacks
        self.sim_human.validate()
        try:
            self.residual.validate()
        except ValueError as err:
            raise ValueError(f"residual.{err}") from err
