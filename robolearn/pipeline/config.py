"""``robolearn pipeline`` configuration: one YAML file describes the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robolearn.collect import CollectConfig
from robolearn.pipeline.layout import RunLayout
from robolearn.train import TrainConfig


@dataclass
class EvalStageConfig:
    """How policies are evaluated in sim."""

    episodes: int = 100
    """Episodes per policy and dynamics preset."""
    num_envs: int = 8
    """Envs stepped in lockstep."""
    dynamics: list[str] = field(default_factory=lambda: ["nominal", "real-gap"])
    """Dynamics presets to evaluate on (refined policies; the base too): nominal or a preset of the task's
    ``configs/dynamics/<task>.yaml``."""
    videos: int = 1
    """Videos recorded per policy (nominal dynamics); a camera policy's videos show each camera's frames (what
    the policy saw) beside the scene."""
    visual: list[str] = field(default_factory=list)
    """Visual presets (``configs/visual/<task>.yaml``: ``train``, ``held-out``) a camera policy (the base and every
    refined one) is also evaluated on, each under every preset of ``dynamics``: the condition is named
    ``<visual>`` on nominal dynamics and ``<visual>+<dynamics>`` otherwise (the report's dynamics column)."""
    seed: int = 100_000
    """Seed of the first evaluation episode (held out from collection and refinement seeds)."""
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """More conditions, each evaluated on nominal dynamics for the base and every refined policy: a name (the
    report's dynamics column) -> task settings on top of the pipeline's ``task``, e.g. ``{push-60N:
    {push_force: 60.0}}`` to show that a policy refined at 120 N pushes does no worse at 60 N."""
    device: str = "auto"
    """Torch device the evaluated policies (and the ROS 2 stage's policy node) run on: auto, cpu, cuda, cuda:N or
    mps (:mod:`robolearn.rl.devices`). auto takes cuda if torch sees a GPU, else mps, else cpu: on a machine
    without an accelerator that is cpu, so the default changes nothing there. Training and each refinement
    branch have their own (``train.device``, a branch's ``settings.device``); the envs step on the CPU."""


@dataclass
class RefineStageConfig:
    """One refinement branch."""

    method: str = "residual"
    """The refinement method (``robolearn refine``'s ``method``); also the branch's name."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Keys of the refinement config (``robolearn refine`` preset keys), e.g. total_env_steps; the pipeline
    sets method, env_id, base and seed."""


@dataclass
class RosStageConfig:
    """Closed loop over ROS 2 against the MuJoCo robot twin."""

    enabled: bool = True
    """Run the refined policy through ROS 2 (needs the ``ros`` extra)."""
    episodes: int = 20
    """Episodes over ROS."""
    policy: str = "residual"
    """Which refined branch to deploy (its method name), or ``base``."""
    step_hz: float = 20.0
    """Wall-clock rate of the twin and the policy node (Hz); 0: the task's control rate, real time. Below it the
    graph runs slower than real time (each step's simulated time is the task's control period), which leaves
    a 2-core machine's policy node time to spare."""
    safety: dict[str, Any] = field(default_factory=dict)
    """Safety node limits (``limits.<SafetyConfig field>``) for this task, on top of the embodiment's defaults, e.g.
    ``{"limits.geofence_radius": 4.5}`` for a racing course wider than the default 3 m geofence."""
    overlap: bool = True
    """Start the closed loop as soon as its policy exists, beside the refinement branches after it (it waits on
    the wall clock more than it computes); false: after every branch, alone on the cores."""


SEED_STRIDE = 1000
"""Collection attempt seeds of pipeline seed ``s`` start at ``collect.seed + SEED_STRIDE * s`` (disjoint sets of
episodes for different pipeline seeds)."""


@dataclass
class PipelineConfig:
    """``robolearn pipeline <preset.yaml>``: demonstrations to a refined policy over ROS 2, with a report."""

    run_dir: str = "runs/pipeline/panda_lift"
    """Everything goes here; rerunning resumes."""
    env_id: str = "robolearn/PandaLift-v0"
    """The task."""
    seed: int = 0
    """Base seed of every stage: collection attempts start at ``collect.seed + SEED_STRIDE * seed``, training
    (batches, network initialisation) adds it to ``train.seed`` and ``train.policy.seed``, refinement uses it;
    the held-out evaluation seeds (``eval.seed``) stay the same for every run."""
    base: str = "train"
    """The base policy: ``train`` (collect demonstrations, then train the ``train`` section's policy on them) or a
    named scripted policy (``expert``, ``expert:noise=0.5``), the base as it is: a classical controller refined by
    residual RL, as COMPASS does. With a scripted base the collect and train stages do nothing and the refinement
    branches have no demonstrations unless their settings name some."""
    task: dict[str, Any] = field(default_factory=dict)
    """Task settings (``gymnasium.make`` keywords, e.g. ``{push_force: 120.0}``) of every stage: collection,
    evaluation, refinement (a branch's own ``settings.task`` adds to them) and the ROS 2 twin."""
    privileged: bool = True
    """Whether the deployed policy may read the simulator's privileged state (object poses, goals: the task's
    state keys besides its proprioception). false (the vision presets): the base's ``train.policy.obs_keys``
    and every refinement branch's inputs (``settings.obs_keys``, by default the base's) must be proprioception
    and ``pixels/<camera>`` keys only, checked when the preset loads; the refinement envs then hand the
    networks those keys alone."""
    threads: int = 1
    """Torch CPU threads of the pipeline's process, set when it starts or resumes (0: torch's default, one per
    core); the train stage uses ``train.threads``. One is fastest where processes share the cores."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Demonstrations (``out`` is set to <run_dir>/data)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The base policy (``run_dir`` and ``data.path`` are set by the pipeline)."""
    eval: EvalStageConfig = field(default_factory=EvalStageConfig)
    """Sim evaluation of expert, base and refined policies."""
    refine: list[RefineStageConfig] = field(default_factory=lambda: [RefineStageConfig()])
    """Refinement branches, run in order."""
    ros: RosStageConfig = field(default_factory=RosStageConfig)
    """The ROS 2 closed loop."""

    @property
    def trains_base(self) -> bool:
        """Whether the base is trained from demonstrations (``base: train``) rather than scripted."""
        return self.base == "train"

    @property
    def layout(self) -> RunLayout:
        """The paths of the run directory."""
        return RunLayout(Path(self.run_dir))


def camera_task(cfg: PipelineConfig) -> dict[str, Any]:
    """The pipeline's task settings plus the ``pixels`` setting that renders ``collect.cameras`` at
    ``collect.image_size`` (refinement envs and the ROS 2 twin see the frames the demonstrations recorded)."""
    from robolearn.collect import camera_task as with_cameras

    return with_cameras(cfg.task, cfg.collect.cameras, cfg.collect.image_size)


def base_spec(cfg: PipelineConfig) -> str:
    """What loads the base: the trained checkpoint directory (``base: train``) or the scripted policy's name."""
    return str(cfg.layout.base) if cfg.trains_base else cfg.base
